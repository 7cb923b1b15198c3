#!/bin/bash
# list_cpp.sh LIST_CPP -- the C++ fm_ptr list demo across two processes.
set -u
prog=$1
dir=$(mktemp -d "${TMPDIR:-/tmp}/fmex.XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
f=$dir/list.fm
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

out=$("$prog" "$f") || fail "first run exited $?"
[ "$out" = "wrote 10 nodes" ] || fail "first run said '$out'"
for run in second third; do
    out=$("$prog" "$f") || fail "$run run exited $?"
    if [ "$out" != "$(seq 0 9)" ]; then
        fail "$run run did not print 0..9"
        diff <(seq 0 9) <(printf '%s\n' "$out") >&2
    fi
done

# fmalloc-style pre-sized zero file: initialised, keeping its size.
dd if=/dev/zero of="$dir/zero.fm" bs=4k count=256 status=none
out=$("$prog" "$dir/zero.fm") || fail "zero-filled file: first run exited $?"
[ "$out" = "wrote 10 nodes" ] || fail "zero-filled file: first run said '$out'"
out=$("$prog" "$dir/zero.fm") || fail "zero-filled file: second run exited $?"
[ "$out" = "$(seq 0 9)" ] || fail "zero-filled file: second run did not print 0..9"

if "$prog" "$dir" >/dev/null 2>"$dir/err"; then
    fail "a directory was accepted"
elif ! [ -s "$dir/err" ]; then
    fail "no message for a directory"
fi

if [ $failures -ne 0 ]; then
    echo "$failures failures" >&2
    exit 1
fi
echo "list-cpp example: ok"
