#!/bin/bash
# wordcount.sh WORDCOUNT -- counts accumulate across runs (each a new
# process, so the map is found by name in a file mapped anew); the arena
# checks clean and fmtool names lists the map when FMTOOL is given.
prog=$1
fmtool=${2:-}
source "$(dirname "$0")/lib.sh"
f=$dir/words.fm

out=$(printf 'the cat and the hat\n' | "$prog" "$f") || fail "first run exited $?"
want=$'1 and\n1 cat\n1 hat\n2 the'
[ "$out" = "$want" ] || fail "first run printed '$out'"

out=$(printf 'The Hat, the BAT; a-b\n' | "$prog" "$f") || fail "second run exited $?"
want=$'1 a-b\n1 and\n1 bat\n1 cat\n2 hat\n4 the'
[ "$out" = "$want" ] || fail "second run printed '$out'"

# Many words, some long enough to leave the short-string buffer.
for i in $(seq 1 2000); do echo "word$((i % 300)) a-rather-long-word-that-needs-its-own-block-$((i % 7))"; done >"$dir/text"
"$prog" "$f" <"$dir/text" >/dev/null || fail "third run exited $?"
out=$("$prog" "$f" </dev/null) || fail "fourth run exited $?"
grep -qx '6 word0' <<<"$out" || fail "word0 should count 6: $(grep -x '[0-9]* word0' <<<"$out")"
grep -qx '286 a-rather-long-word-that-needs-its-own-block-1' <<<"$out" ||
    fail "long word count: $(grep 'block-1$' <<<"$out")"
[ "$(wc -l <<<"$out")" = $((6 + 300 + 7)) ] || fail "distinct words: $(wc -l <<<"$out")"

if [ -n "$fmtool" ]; then
    "$fmtool" check "$f" >/dev/null || fail "fmtool check"
    "$fmtool" names "$f" | grep -q ' wordcount$' || fail "fmtool names does not list the map"
fi

finish "wordcount example"
