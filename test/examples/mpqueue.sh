#!/bin/bash
# mpqueue.sh MPQUEUE -- the mpqueue example: the commands one by one, then
#   rounds of two producers and two consumers running at once, one producer
#   and one consumer killed with SIGKILL after some milliseconds (a
#   different delay each round) and replaced, the queue drained.  At the end:
#     - every message a producer reported put was taken, with its seq;
#     - nothing was taken that was never put, and at most one message a
#       round that its (killed) producer did not report;
#     - a message taken twice was taken by the killed consumer first, at
#       most one a round, and the second taker marked it "(redelivered)";
#     - the queue is empty and the arena holds no block (check).
source "$(dirname "$0")/lib.sh"
mq=$1
q=$dir/queue.fm
strip_from() { sed 's/ from [0-9]*:/:/'; }

# ---- one command at a time

"$mq" "$q" put hello queue || fail "put exited $?"
"$mq" "$q" put second || fail "second put exited $?"
expect_output "list" "$(printf '#1: hello queue\n#2: second')" "$("$mq" "$q" list | strip_from)"
"$mq" "$q" stats >"$dir/stats" || fail "stats exited $?"
grep -q '^ready: 2$' "$dir/stats" || fail "stats: $(cat "$dir/stats")"
expect_output "first get" "hello queue" "$("$mq" "$q" get)"
expect_output "second get" "second" "$("$mq" "$q" get)"
"$mq" "$q" get >/dev/null 2>"$dir/err"
[ $? -eq 1 ] || fail "get on an empty queue: exit status not 1"
grep -q "empty" "$dir/err" || fail "get on an empty queue: $(cat "$dir/err")"
expect_output "produce" "$(printf 'put #3 x-1\nput #4 x-2')" "$("$mq" "$q" produce 2 x)"
expect_output "consume" "$(printf 'got #3 x-1\ngot #4 x-2')" "$("$mq" "$q" consume 2)"
expect_output "produce --quiet" "produced 3 messages (y-1 .. y-3)" \
    "$("$mq" "$q" produce 3 y --quiet)"
expect_output "drain --quiet" "consumed 3 messages (0 redelivered)" "$("$mq" "$q" drain --quiet)"

# A consumer waits for a message; meanwhile check refuses to run.
"$mq" "$q" consume 1 --wait 20 >"$dir/waiter" &
waiter=$!
sleep 0.2
"$mq" "$q" check >/dev/null 2>"$dir/err" && fail "check ran while a consumer had the queue open"
grep -q "no other process" "$dir/err" || fail "check beside a consumer: $(cat "$dir/err")"
"$mq" "$q" put for the waiter || fail "put for the waiter exited $?"
wait $waiter || fail "the waiting consumer exited $?"
expect_output "waiting consumer" "got #8 for the waiter" "$(cat "$dir/waiter")"
"$mq" "$q" consume 1 --wait 0 2>"$dir/err" && fail "consume on an empty queue with --wait 0 succeeded"
grep -q "nothing to take" "$dir/err" || fail "consume timeout: $(cat "$dir/err")"

"$mq" "$q" frobnicate 2>/dev/null && fail "unknown command accepted"
"$mq" "$q" produce 2>/dev/null && fail "produce without a count accepted"
"$mq" "$q" get --quiet 2>/dev/null && fail "get accepted an option"
"$mq" "$q" consume 1 --pause 2>/dev/null && fail "--pause without a value accepted"
printf 'not an arena' >"$dir/text"
"$mq" "$dir/text" stats 2>"$dir/err" && fail "stats on a text file succeeded"
[ -s "$dir/err" ] || fail "no message for a file that is not an arena"
"$mq" "$dir/missing.fm" check 2>/dev/null && fail "check of a missing file succeeded"

# ---- kill -9 rounds

# A killed process's last line may be cut short (a write split at a page
# boundary of the file): drop it, as if it had not been printed.
drop_cut_line() { [ -s "$1" ] && [ -n "$(tail -c 1 "$1")" ] && sed -i '$d' "$1"; true; }

rounds=0
for delay in 0.01 0.02 0.03 0.05 0.08 0.12; do
    rounds=$((rounds + 1))
    r=$rounds
    # The two to be killed run flat out (they would go on for minutes), so
    # that the kill finds them at work: in fm_open, holding a claim, inside
    # the library, or waiting.  The two that live have counts: the
    # consumer's 50 are there whatever the killed one took, since only the
    # two live consumers take after the kill and producer c puts 100 then.
    "$mq" "$q" produce 100000 "a$r" >"$dir/put-a$r" &
    pa=$!
    "$mq" "$q" consume 100000 >"$dir/got-k$r" &
    ck=$!
    "$mq" "$q" produce 100 "b$r" >"$dir/put-b$r" &
    pb=$!
    "$mq" "$q" consume 50 >"$dir/got-s$r" &
    cs=$!
    sleep "$delay"
    kill -9 $pa $ck 2>/dev/null
    wait $pa $ck 2>/dev/null
    drop_cut_line "$dir/put-a$r"
    drop_cut_line "$dir/got-k$r"
    echo "round $r, kill -9 after ${delay} s: the producer had put $(grep -c '^put ' "$dir/put-a$r")," \
        "the consumer taken $(grep -c '^got ' "$dir/got-k$r")"
    "$mq" "$q" produce 100 "c$r" >"$dir/put-c$r" &
    pc=$!
    "$mq" "$q" consume 50 >"$dir/got-t$r" &
    ct=$!
    wait $cs || fail "round $r: consumer s exited $?"
    wait $ct || fail "round $r: consumer t exited $?"
    # The killed producer may have filled the queue: drain while b and c
    # still need room, then once more.
    while kill -0 $pb 2>/dev/null || kill -0 $pc 2>/dev/null; do
        "$mq" "$q" drain >>"$dir/got-d$r" || fail "round $r: drain exited $?"
    done
    wait $pb || fail "round $r: producer b exited $?"
    wait $pc || fail "round $r: producer c exited $?"
    "$mq" "$q" drain >>"$dir/got-d$r" || fail "round $r: drain exited $?"
    "$mq" "$q" stats >"$dir/stats" || fail "round $r: stats exited $?"
    grep -q '^ready: 0$' "$dir/stats" && grep -q '^in flight: 0 ' "$dir/stats" ||
        fail "round $r: after the drain: $(cat "$dir/stats")"
done

# Every line: put|got, seq, text, redelivered (0/1), round, killed (0/1).
for f in "$dir"/put-* "$dir"/got-*; do
    name=${f##*/}
    killed=0
    case $name in put-a* | got-k*) killed=1 ;; esac
    awk -v round="${name//[!0-9]/}" -v killed=$killed '
        $1 == "put" || $1 == "got" {
            again = ($NF == "(redelivered)")
            print $1, substr($2, 2), $3, again, round, killed
        }
        $1 != "put" && $1 != "got" { print "junk", 0, $0, 0, round, killed }' "$f"
done >"$dir/all"

awk -v rounds=$rounds '
    $1 == "junk" { bad("unexpected output line: " $3); next }
    $1 == "put" {
        if ($3 in put_seq) bad("put twice: " $3)
        put_seq[$3] = $2
        next
    }
    {
        if (!($3 in got)) ntaken++
        got[$3]++
        if (!$4) plain[$3]++
        if ($6) by_killed[$3] = 1
        if ($3 in got_seq && got_seq[$3] != $2) bad($3 " taken with two seqs")
        got_seq[$3] = $2
    }
    function bad(msg) { print "FAIL: " msg > "/dev/stderr"; failures++ }
    function known(t,    n, parts) {
        n = split(t, parts, "-")
        if (n != 2 || parts[1] !~ /^[abc][0-9]+$/ || parts[2] !~ /^[0-9]+$/) return 0
        return parts[2] >= 1 && parts[2] <= (parts[1] ~ /^a/ ? 100000 : 100)
    }
    END {
        for (t in put_seq) {
            if (!(t in got)) bad("put, never taken: " t)
            else if (got_seq[t] != put_seq[t]) bad(t ": put as #" put_seq[t] ", taken as #" got_seq[t])
        }
        for (t in got) {
            if (!known(t)) bad("taken, never put: " t)
            else if (!(t in put_seq)) {
                if (t !~ /^a/) bad("taken, not reported by a producer that lived: " t)
                else unreported[substr(t, 1, index(t, "-") - 1)]++
            }
            if (got[t] > 1) {
                dups++
                if (!by_killed[t]) bad(t " taken " got[t] " times, none by the killed consumer")
                if (plain[t] > 1) bad(t " taken " got[t] " times, " plain[t] " not marked redelivered")
            }
            if (got[t] > 2) bad(t " taken " got[t] " times")
        }
        for (p in unreported)
            if (unreported[p] > 1) bad(unreported[p] " messages of killed producer " p " not reported")
        if (dups > rounds) bad(dups " messages taken twice in " rounds " rounds")
        printf "%d messages taken, %d of them twice (their first consumer killed)\n", ntaken, dups
        exit failures > 0
    }' "$dir/all" || failures=$((failures + 1))

# Every survivor finished its work.
for r in $(seq 1 $rounds); do
    for p in b c; do
        n=$(grep -c '^put ' "$dir/put-$p$r")
        [ "$n" = 100 ] || fail "round $r: producer $p reported $n puts, want 100"
    done
    for c in s t; do
        n=$(grep -c '^got ' "$dir/got-$c$r")
        [ "$n" = 50 ] || fail "round $r: consumer $c took $n, want 50"
    done
done

"$mq" "$q" stats | grep -E '^(claims taken over|unfinished messages)'
"$mq" "$q" check >"$dir/check" || fail "check exited $?: $(cat "$dir/check")"
grep -q '^allocated: 0 blocks' "$dir/check" || fail "blocks left: $(cat "$dir/check")"
grep -q '^check: ok' "$dir/check" || fail "check: $(cat "$dir/check")"

finish "mpqueue example"
