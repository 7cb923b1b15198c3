#!/bin/bash
# list.sh LIST -- the list example across separate processes.
#   run 1 creates the file with 0..9, run 2 prints them, --append 5 makes
#   0..14; errors give a message and a non-zero exit.
source "$(dirname "$0")/lib.sh"
list=$1
f=$dir/list.fm

out=$("$list" "$f") || fail "first run exited $?"
[ -s "$f" ] || fail "first run did not create $f"
case $out in *created*) ;; *) fail "first run said '$out'";; esac

out=$("$list" "$f") || fail "second run exited $?"
expect_output "second run prints 0..9" "$(seq 0 9)" "$out"

out=$("$list" "$f") || fail "third run exited $?"
expect_output "third run prints 0..9 again" "$(seq 0 9)" "$out"

out=$("$list" "$f" --append 5) || fail "--append 5 exited $?"
expect_output "--append 5 reports the total" "appended 5 nodes, 15 in total" "$out"

out=$("$list" "$f") || fail "run after --append exited $?"
expect_output "after --append 5: 0..14" "$(seq 0 14)" "$out"

# --append on a new file: the 10 initial nodes, then N more.
out=$("$list" "$dir/new.fm" --append 3) || fail "--append on a new file exited $?"
out=$("$list" "$dir/new.fm") || fail "listing the new file exited $?"
expect_output "new file with --append 3: 0..12" "$(seq 0 12)" "$out"

# Errors: a message on stderr and a non-zero exit, never a crash.
expect_error() { # WHAT PATTERN ARGS...
    local what=$1 pattern=$2 status
    shift 2
    "$list" "$@" >"$dir/out" 2>"$dir/err"
    status=$?
    if [ $status -eq 0 ] || [ $status -gt 2 ]; then
        fail "$what: exit status $status (want 1 or 2)"
    elif ! grep -qi -- "$pattern" "$dir/err"; then
        fail "$what: no '$pattern' in: $(cat "$dir/err")"
    fi
}
expect_error "missing directory" "list" "$dir/no/such/dir/x.fm"
expect_error "directory as file" "list" "$dir"
printf 'this is not an arena, just some text that is long enough\n%.0s' $(seq 100) >"$dir/text"
cp "$dir/text" "$dir/text.orig"
expect_error "text file" "list" "$dir/text"
cmp -s "$dir/text" "$dir/text.orig" || fail "a failed open modified the text file"
expect_error "bad --append count" "append" "$f" --append many
expect_error "no arguments" "usage"

finish "list example"
