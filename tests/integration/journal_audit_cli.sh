#!/usr/bin/env bash
# journal_audit_cli.sh — justx-audit's commands on a known journal: help and
# usage errors, trail, search, export, prove and verify-proof, with the exit
# statuses and the counts the generated records imply.
#
# usage: journal_audit_cli.sh JUSTX_AUDIT JOURNAL_WRITER PKI_DIR WORK_DIR
set -u
AUDIT=$1 WRITER=$2 PKI=$3 WORK=$4
KEY=$PKI/gateway.pub
rm -rf "$WORK"
mkdir -p "$WORK"
J=$WORK/journal
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
# expect STATUS COMMAND...: runs the command (stdout to $WORK/out), checks its exit status.
expect() {
    local want=$1
    shift
    "$@" > "$WORK/out" 2> "$WORK/err"
    local got=$?
    if [ "$got" -ne "$want" ]; then
        fail "exit $got, expected $want: $*"
        cat "$WORK/out" "$WORK/err"
    fi
}
lines() { wc -l < "$WORK/out"; }

"$WRITER" create "$J" --key "$PKI/gateway.key" --count 100 --checkpoint-every 25 \
    --segment-size 8192 || exit 1

# Help for every command, usage errors.
expect 0 "$AUDIT" --help
grep -q "^usage: justx-audit COMMAND" "$WORK/out" || fail "top-level help"
for command in verify trail search export prove verify-proof; do
    expect 0 "$AUDIT" $command --help
    grep -q "^usage: justx-audit $command" "$WORK/out" || fail "$command --help"
done
expect 2 "$AUDIT"
expect 2 "$AUDIT" frobnicate
expect 2 "$AUDIT" verify "$J"
expect 2 "$AUDIT" verify "$J" --key "$KEY" --bogus
expect 2 "$AUDIT" verify "$J" --key "$PKI/KG-PROBATION.pem" # not an Ed25519 key
expect 2 "$AUDIT" trail "$J"
expect 2 "$AUDIT" trail "$J" --message-id a --case-id b
expect 2 "$AUDIT" search "$J" --event BOGUS
expect 2 "$AUDIT" search "$J" --since yesterday
expect 2 "$AUDIT" export "$J" --format xml
expect 2 "$AUDIT" prove "$J" --index minus-one

# verify, text and JSON; the certificate works as the key too.
expect 0 "$AUDIT" verify "$J" --key "$KEY"
grep -q "verified: no errors" "$WORK/out" || fail "verify text"
expect 0 "$AUDIT" verify "$J" --key "$PKI/gateway.pem" --origin justx/JX-GATEWAY --json
grep -q '"ok": true' "$WORK/out" || fail "verify --json"
grep -q '"records": 100' "$WORK/out" || fail "verify --json record count"
expect 1 "$AUDIT" verify "$J" --key "$KEY" --origin someone/else
expect 1 "$AUDIT" verify "$J" --key "$PKI/TEST-ED25519.pem"

# trail: record 42 is the one of message msg-42; case CASE-3 is records 21..27.
expect 0 "$AUDIT" trail "$J" --message-id msg-42
[ "$(lines)" -eq 1 ] && grep -q "^#42 .* msg-42 " "$WORK/out" || fail "trail message"
expect 0 "$AUDIT" trail "$J" --case-id CASE-3
[ "$(lines)" -eq 7 ] || fail "trail case: $(lines) lines"
[ "$(head -1 "$WORK/out" | cut -d' ' -f1)" = "#21" ] || fail "trail case order"
expect 0 "$AUDIT" trail "$J" --case-id CASE-3 --json
grep -q '"count": 7' "$WORK/out" || fail "trail --json count"
expect 1 "$AUDIT" trail "$J" --message-id no-such-message

# search: REJECTED is every index = 3 mod 4; KG-PRISON sends index = 3 mod 5
# and receives index = 1 mod 5 (events other than ACCEPTED name a recipient).
want=0
for i in $(seq 0 99); do
    if [ $((i % 4)) -eq 3 ] && { [ $((i % 5)) -eq 3 ] || [ $((i % 5)) -eq 1 ]; }; then
        want=$((want + 1))
    fi
done
expect 0 "$AUDIT" search "$J" --event rejected --agency KG-PRISON
[ "$(lines)" -eq "$want" ] || fail "search event+agency: $(lines), expected $want"
expect 0 "$AUDIT" search "$J" --since 2025-01-01T00:00:10Z --until 2025-01-01T00:00:20Z
[ "$(lines)" -eq 10 ] || fail "search time range: $(lines)"
expect 0 "$AUDIT" search "$J" --since 2025-01-01T06:00:10+06:00 --until 2025-01-01T00:00:12Z
[ "$(lines)" -eq 2 ] || fail "search time range with offset: $(lines)"
expect 0 "$AUDIT" search "$J" --type justx.v1.SentenceOrder --json
grep -q '"count": 50' "$WORK/out" || fail "search type"
expect 1 "$AUDIT" search "$J" --since 2030-01-01

# export.
expect 0 "$AUDIT" export "$J" --format jsonl
[ "$(lines)" -eq 100 ] || fail "export jsonl lines"
head -1 "$WORK/out" | grep -q '^{"index": *"0", *"event": *"ACCEPTED"' || fail "export jsonl first record"
expect 0 "$AUDIT" export "$J" --format csv --output "$WORK/export.csv"
[ "$(wc -l < "$WORK/export.csv")" -eq 101 ] || fail "export csv lines"
head -1 "$WORK/export.csv" | grep -q "^index,time,event,message_id," || fail "export csv header"
grep -q '^42,2025-01-01T00:00:42.000Z,' "$WORK/export.csv" || fail "export csv record 42"

# prove and verify-proof.
expect 0 "$AUDIT" prove "$J" --index 42 --output "$WORK/p42.tlog-proof" --record-out "$WORK/r42.bin"
head -1 "$WORK/p42.tlog-proof" | grep -qx "c2sp.org/tlog-proof@v1" || fail "proof header"
grep -qx "index 42" "$WORK/p42.tlog-proof" || fail "proof index line"
grep -qx "100" "$WORK/p42.tlog-proof" || fail "proof should use the latest checkpoint"
expect 0 "$AUDIT" verify-proof "$WORK/p42.tlog-proof" --key "$KEY"
grep -q "^verified: record 42" "$WORK/out" || fail "verify-proof text"
expect 0 "$AUDIT" verify-proof "$WORK/p42.tlog-proof" --key "$KEY" --record "$WORK/r42.bin" \
    --origin justx/JX-GATEWAY --json
grep -q '"ok": true' "$WORK/out" || fail "verify-proof --json"
expect 0 "$AUDIT" prove "$J" --index 10 --checkpoint 50 --output "$WORK/p10.tlog-proof"
grep -qx "50" "$WORK/p10.tlog-proof" || fail "proof with --checkpoint 50"
expect 0 "$AUDIT" verify-proof "$WORK/p10.tlog-proof" --key "$KEY"
expect 1 "$AUDIT" prove "$J" --index 100
expect 1 "$AUDIT" prove "$J" --index 30 --checkpoint 25
# A proof that does not hold: wrong key, wrong origin, another record, a hash changed.
expect 1 "$AUDIT" verify-proof "$WORK/p42.tlog-proof" --key "$PKI/TEST-ED25519.pem"
expect 1 "$AUDIT" verify-proof "$WORK/p42.tlog-proof" --key "$KEY" --origin other/log
"$AUDIT" prove "$J" --index 43 --record-out "$WORK/r43.bin" > /dev/null
expect 1 "$AUDIT" verify-proof "$WORK/p42.tlog-proof" --key "$KEY" --record "$WORK/r43.bin"
sed '4s/^./\//' "$WORK/p42.tlog-proof" > "$WORK/bad.tlog-proof"
cmp -s "$WORK/p42.tlog-proof" "$WORK/bad.tlog-proof" && sed -i '4s/^./A/' "$WORK/bad.tlog-proof"
expect 1 "$AUDIT" verify-proof "$WORK/bad.tlog-proof" --key "$KEY"
grep -v '^extra ' "$WORK/p42.tlog-proof" > "$WORK/noextra.tlog-proof"
expect 1 "$AUDIT" verify-proof "$WORK/noextra.tlog-proof" --key "$KEY"
expect 0 "$AUDIT" verify-proof "$WORK/noextra.tlog-proof" --key "$KEY" --record "$WORK/r42.bin"

echo "audit CLI checks: $failures failure(s)"
[ $failures -eq 0 ]
