#!/bin/bash
# list_cpp.sh LIST_CPP -- the C++ fm_ptr list demo across two processes.
source "$(dirname "$0")/lib.sh"
prog=$1
f=$dir/list.fm

out=$("$prog" "$f") || fail "first run exited $?"
[ "$out" = "wrote 10 nodes" ] || fail "first run said '$out'"
for run in second third; do
    out=$("$prog" "$f") || fail "$run run exited $?"
    expect_output "$run run prints 0..9" "$(seq 0 9)" "$out"
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

finish "list-cpp example"
