#!/usr/bin/env bash
# journal_tamper.sh — every kind of tampering is caught by `justx-audit verify`,
# which exits 1 and names the place (segment file and byte offset, or the
# checkpoint's byte offset and number).
#
# usage: journal_tamper.sh JUSTX_AUDIT JOURNAL_WRITER PKI_DIR WORK_DIR
set -u
AUDIT=$1 WRITER=$2 PKI=$3 WORK=$4
KEY=$PKI/gateway.pub
ORIGIN=justx/JX-GATEWAY
rm -rf "$WORK"
mkdir -p "$WORK"
failures=0
checks=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

BASE=$WORK/base
"$WRITER" create "$BASE" --key "$PKI/gateway.key" --origin $ORIGIN --count 200 --batch 16 \
    --checkpoint-every 50 --segment-size 16384 || { echo "cannot create the journal"; exit 1; }
if ! "$AUDIT" verify "$BASE" --key "$KEY" --origin $ORIGIN > "$WORK/base.out"; then
    cat "$WORK/base.out"
    fail "the untouched journal does not verify"
fi
"$WRITER" frames "$BASE" > "$WORK/frames.txt"
[ "$(wc -l < "$WORK/frames.txt")" -eq 200 ] || fail "expected 200 frames"
segments=$(cut -d' ' -f1 "$WORK/frames.txt" | sort -u | wc -l)
[ "$segments" -ge 4 ] || fail "expected several segments, got $segments"

fresh() {
    rm -rf "$WORK/case"
    cp -a "$BASE" "$WORK/case"
}

# expect_detected NAME PATTERN...: verify of $WORK/case exits 1, output has each pattern.
expect_detected() {
    local name=$1
    shift
    local out=$WORK/last.out
    checks=$((checks + 1))
    "$AUDIT" verify "$WORK/case" --key "$KEY" --origin $ORIGIN > "$out" 2>&1
    local rc=$?
    if [ $rc -ne 1 ]; then
        fail "$name: verify exited $rc, expected 1"
        cat "$out"
        return
    fi
    local pattern
    for pattern in "$@"; do
        if ! grep -qF -- "$pattern" "$out"; then
            fail "$name: the report does not name '$pattern'"
            cat "$out"
        fi
    done
}

frame() { sed -n "$(($1 + 1))p" "$WORK/frames.txt"; } # "segment offset length index"

# 1. One flipped byte, in records all over the journal and at every part of
#    a frame: marker, length, record body, checksum.
last=199
picks="0 1 37 99 100 150 198 $last"
for seg in $(cut -d' ' -f1 "$WORK/frames.txt" | sort -u); do
    picks="$picks $(grep "^$seg " "$WORK/frames.txt" | head -1 | cut -d' ' -f4)"
    picks="$picks $(grep "^$seg " "$WORK/frames.txt" | tail -1 | cut -d' ' -f4)"
done
for index in $picks; do
    read -r seg off len idx <<< "$(frame "$index")"
    for position in 0 5 9 $((len / 2)) $((len - 1)); do
        fresh
        "$WRITER" flip "$WORK/case" "$seg" $((off + position))
        expect_detected "flip record $idx byte +$position" "$seg byte $off"
    done
done

# 2. A record deleted: at the start, in the middle, at a segment's start, at the end.
first_of_second=$(sed -n "2p" <<< "$(cut -d' ' -f1 "$WORK/frames.txt" | sort -u)")
second_start=$(grep "^$first_of_second " "$WORK/frames.txt" | head -1 | cut -d' ' -f4)
for index in 0 57 "$second_start"; do
    read -r seg off len idx <<< "$(frame "$index")"
    fresh
    "$WRITER" delete "$WORK/case" "$idx"
    expect_detected "delete record $idx" "$seg byte $off" "where $idx was due" \
        "records among them were altered"
done
read -r seg off len idx <<< "$(frame $last)"
fresh
"$WRITER" delete "$WORK/case" $last
expect_detected "delete the last record" "checkpoint covers 200 records but the journal holds only 199"

# 3. Two records swapped, adjacent and apart.
for pair in "10 11" "20 25"; do
    read -r a b <<< "$pair"
    read -r seg off len idx <<< "$(frame "$a")"
    fresh
    "$WRITER" swap "$WORK/case" "$a" "$b"
    expect_detected "swap $a and $b" "$seg byte $off" "record carries index $b where $a was due"
done

# 4. Truncation in the middle: of a closed segment, of the last one, a whole
#    segment file gone.
read -r seg off len idx <<< "$(frame 60)"
fresh
truncate -s $((off + len / 2)) "$WORK/case/$seg"
expect_detected "truncate $seg inside record 60" "$seg byte $off"
last_segment=$(cut -d' ' -f1 "$WORK/frames.txt" | sort -u | tail -1)
read -r seg off len idx <<< "$(grep "^$last_segment " "$WORK/frames.txt" | head -1)"
fresh
truncate -s $((off + 3)) "$WORK/case/$seg"
expect_detected "truncate the last segment inside record $idx" "$seg byte $off" \
    "checkpoint covers 200 records but the journal holds only $idx"
fresh
rm "$WORK/case/$first_of_second"
expect_detected "remove segment $first_of_second" "error: $first_of_second" "segment file missing"

# 5. A checkpoint's signature replaced: one character changed; the signature of
#    another checkpoint pasted in; the root changed under a valid signature.
sig_line() { grep -n "^— " "$WORK/case/checkpoints" | sed -n "$1p" | cut -d: -f1; }
checkpoint_offset() { # byte offset of checkpoint N (0-based): the start of its origin line
    grep -b "^$ORIGIN\$" "$WORK/case/checkpoints" | sed -n "$(($1 + 1))p" | cut -d: -f1
}
fresh
line=$(sig_line 2)
text=$(sed -n "${line}p" "$WORK/case/checkpoints")
c=${text: -10:1}
[ "$c" = A ] && r=B || r=A
awk -v n="$line" -v r="$r" 'NR == n { $0 = substr($0, 1, length($0) - 10) r substr($0, length($0) - 8) } { print }' \
    "$WORK/case/checkpoints" > "$WORK/cp" && mv "$WORK/cp" "$WORK/case/checkpoints"
expect_detected "checkpoint signature changed" "checkpoints byte $(checkpoint_offset 1), checkpoint #1" \
    "fails verification"
fresh
one=$(sed -n "$(sig_line 1)p" "$WORK/case/checkpoints")
line=$(sig_line 3)
awk -v n="$line" -v s="$one" 'NR == n { $0 = s } { print }' "$WORK/case/checkpoints" > "$WORK/cp" &&
    mv "$WORK/cp" "$WORK/case/checkpoints"
expect_detected "checkpoint signature from another checkpoint" \
    "checkpoints byte $(checkpoint_offset 2), checkpoint #2" "fails verification"
fresh
root_line=$(( $(grep -n "^$ORIGIN\$" "$WORK/case/checkpoints" | sed -n 2p | cut -d: -f1) + 2 ))
awk -v n="$root_line" 'NR == n { $0 = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" } { print }' \
    "$WORK/case/checkpoints" > "$WORK/cp" && mv "$WORK/cp" "$WORK/case/checkpoints"
expect_detected "checkpoint root replaced" "checkpoints byte $(checkpoint_offset 1), checkpoint #1"

# 6. A record rewritten with a valid checksum: only the Merkle tree can tell.
read -r seg off len idx <<< "$(frame 77)"
fresh
"$WRITER" rewrite "$WORK/case" 77
expect_detected "record 77 rewritten with a valid checksum" \
    "the first 100 records give root" "records among them were altered"
grep -q "the first 50 records give root" "$WORK/last.out" &&
    fail "checkpoint 0 (50 records, before record 77) should still match"

# 7. --json names the place too.
read -r seg off len idx <<< "$(frame 42)"
fresh
"$WRITER" flip "$WORK/case" "$seg" $((off + 20))
"$AUDIT" verify "$WORK/case" --key "$KEY" --json > "$WORK/json.out"
[ $? -eq 1 ] || fail "json: exit status"
grep -q '"ok": false' "$WORK/json.out" || fail "json: ok is not false"
grep -q "\"file\": \"$seg\"" "$WORK/json.out" || fail "json: no file"
grep -q "\"offset\": $off" "$WORK/json.out" || fail "json: no offset"

echo "$checks tamper cases checked, $failures failure(s)"
[ $failures -eq 0 ]
