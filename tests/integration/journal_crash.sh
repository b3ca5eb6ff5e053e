#!/usr/bin/env bash
# journal_crash.sh — a writer killed with SIGKILL at random moments, 30 times:
# every record it reported durable is there after reopening, and the journal
# verifies (before recovery, with at most a torn-tail warning; and after).
#
# usage: journal_crash.sh JUSTX_AUDIT JOURNAL_WRITER PKI_DIR WORK_DIR
set -u
AUDIT=$1 WRITER=$2 PKI=$3 WORK=$4
rm -rf "$WORK"
mkdir -p "$WORK"
DIR=$WORK/journal
DURABLE=$WORK/durable.txt
: > "$DURABLE"
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
RANDOM=4242
rounds=30
torn_made=0
for round in $(seq 1 $rounds); do
    "$WRITER" crash "$DIR" --key "$PKI/gateway.key" --segment-size 65536 --seed "$round" \
        >> "$DURABLE" 2>> "$WORK/writer.err" &
    pid=$!
    sleep "$(printf '0.%03d' $((RANDOM % 300 + 20)))"
    kill -9 "$pid"
    wait "$pid" 2> /dev/null
    # A killed process cannot tear its own pwrite, but power loss can leave
    # the start of a frame on disk: every third round, simulate that.
    if [ $((round % 3)) -eq 0 ]; then
        last_segment=$(ls "$DIR"/journal-*.seg | tail -1)
        printf 'JXR1\000\000\002\000partial' >> "$last_segment"
        torn_made=$((torn_made + 1))
    fi
    if ! "$AUDIT" verify "$DIR" --key "$PKI/gateway.pub" > "$WORK/raw.out" 2>&1; then
        cat "$WORK/raw.out"
        fail "round $round: the crashed journal does not verify"
    fi
    "$WRITER" check "$DIR" --durable "$DURABLE" > "$WORK/check.out" 2>&1
    status=$?
    cat "$WORK/check.out" >> "$WORK/checks.log"
    if [ $status -ne 0 ]; then
        cat "$WORK/check.out"
        fail "round $round: a record reported durable is missing or wrong"
    fi
    if ! "$AUDIT" verify "$DIR" --key "$PKI/gateway.pub" > "$WORK/after.out" 2>&1; then
        cat "$WORK/after.out"
        fail "round $round: the recovered journal does not verify"
    fi
    grep -q "^error" "$WORK/after.out" && fail "round $round: errors after recovery"
    grep -q "^warning: journal-" "$WORK/after.out" && fail "round $round: torn tail left after recovery"
done
torn=$(cat "$WORK/writer.err" "$WORK/checks.log" | grep -c "recovered: cut" || true)
echo "$rounds kills; $(tail -1 "$WORK/check.out"); torn tails made: $torn_made, cut at reopen: $torn"
[ "$torn" -ge "$torn_made" ] || fail "recovery cut $torn torn tails, $torn_made were made"
[ $failures -eq 0 ]
