#!/bin/bash
# kv.sh KV [LIST] -- the kv example, every command in its own process.
#   100 puts (the table doubles 8 -> 128 buckets), a get of each, deletes,
#   replacements, list and stats; errors give a message and exit 1.
source "$(dirname "$0")/lib.sh"
kv=$1
list=${2:-}
f=$dir/kv.fm
stat_line() { "$kv" "$f" stats | sed -n "s/^$1: \([0-9]*\).*/\1/p"; }

for i in $(seq 1 100); do
    "$kv" "$f" put "key$i" "value-$i-$((i * i))" || fail "put key$i exited $?"
done
[ "$(stat_line entries)" = 100 ] || fail "stats: $(stat_line entries) entries after 100 puts"
[ "$(stat_line buckets)" = 128 ] || fail "stats: $(stat_line buckets) buckets after 100 puts (want 128)"

for i in $(seq 1 100); do
    out=$("$kv" "$f" get "key$i") || fail "get key$i exited $?"
    [ "$out" = "value-$i-$((i * i))" ] || fail "get key$i gave '$out'"
done

# Delete every third key.
deleted=0
for i in $(seq 3 3 100); do
    "$kv" "$f" del "key$i" || fail "del key$i exited $?"
    deleted=$((deleted + 1))
done
left=$((100 - deleted))
for i in $(seq 3 3 100); do
    if "$kv" "$f" get "key$i" >"$dir/out" 2>"$dir/err"; then
        fail "deleted key$i still there: $(cat "$dir/out")"
    elif ! grep -q "not found" "$dir/err"; then
        fail "get of deleted key$i: no 'not found' message"
    fi
done
"$kv" "$f" del key3 2>/dev/null && fail "deleting a missing key succeeded"

n=$("$kv" "$f" list | wc -l)
[ "$n" = "$left" ] || fail "list printed $n entries, want $left"
[ "$(stat_line entries)" = "$left" ] || fail "stats: $(stat_line entries) entries, want $left"

# The listing is exactly the surviving keys.
for i in $(seq 1 100); do
    [ $((i % 3)) -eq 0 ] || printf 'key%s\tvalue-%s-%s\n' "$i" "$i" $((i * i))
done | sort >"$dir/want"
"$kv" "$f" list | sort >"$dir/got"
cmp -s "$dir/want" "$dir/got" || { fail "list content differs"; diff "$dir/want" "$dir/got" >&2; }

# Replace: longer, shorter, empty values; the count does not change.
"$kv" "$f" put key1 "a much longer value than before, to force a bigger entry" || fail "replace key1"
"$kv" "$f" put key2 s || fail "replace key2"
"$kv" "$f" put key4 "" || fail "replace key4 with an empty value"
[ "$("$kv" "$f" get key1)" = "a much longer value than before, to force a bigger entry" ] ||
    fail "key1 after replace: $("$kv" "$f" get key1)"
[ "$("$kv" "$f" get key2)" = s ] || fail "key2 after replace"
[ "$("$kv" "$f" get key4)" = "" ] || fail "key4 after replace"
[ "$(stat_line entries)" = "$left" ] || fail "replacing changed the count"

# Keys with spaces and tabs-free punctuation, and re-inserting a deleted key.
"$kv" "$f" put "a key with spaces" "and a value" || fail "put key with spaces"
[ "$("$kv" "$f" get "a key with spaces")" = "and a value" ] || fail "get key with spaces"
"$kv" "$f" put key3 back || fail "re-put key3"
[ "$("$kv" "$f" get key3)" = back ] || fail "get re-put key3"
[ "$(stat_line entries)" = $((left + 2)) ] || fail "count after two new keys"

"$kv" "$f" stats >"$dir/stats" || fail "stats exited $?"
grep -q '^check: ok' "$dir/stats" || fail "stats: $(cat "$dir/stats")"
grep -q '^allocated: ' "$dir/stats" || fail "stats lacks allocated figures"
grep -q '^free: ' "$dir/stats" || fail "stats lacks free figures"

# Errors.
"$kv" "$dir/missing.fm" get x 2>"$dir/err" && fail "get on a missing file succeeded"
[ -s "$dir/err" ] || fail "no message for a missing file"
[ -e "$dir/missing.fm" ] && fail "get created a file"
"$kv" "$f" get no-such-key 2>"$dir/err"
[ $? -eq 1 ] || fail "get of a missing key: exit status not 1"
grep -q "not found" "$dir/err" || fail "get of a missing key: no message"
"$kv" "$f" frobnicate 2>/dev/null && fail "unknown command accepted"
"$kv" "$f" put onlykey 2>/dev/null && fail "put without a value accepted"
if [ -n "$list" ]; then
    "$list" "$dir/list.fm" >/dev/null || fail "list example exited $?"
    "$kv" "$dir/list.fm" get x 2>"$dir/err" && fail "kv accepted a list arena"
    grep -q "something other" "$dir/err" || fail "kv on a list arena: $(cat "$dir/err")"
    "$list" "$f" >/dev/null 2>"$dir/err" && fail "list accepted a kv arena"
fi

finish "kv example"
