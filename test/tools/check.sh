#!/bin/bash
# check.sh FMTOOL MAKE_ARENA -- fmtool check: 0 clean, 1 corrupt (naming the
# chunk), 2 cannot open; on fresh, random, dirty, damaged, locked and empty
# arenas.  check never changes the file.
source "$(dirname "$0")/lib.sh"

"$mk" fresh "$dir/fresh.fm" || fail "make_arena fresh"
run "$fmtool" check "$dir/fresh.fm"
expect_rc 0
expect_out "^$dir/fresh.fm: clean: 0 blocks allocated \(0 bytes\), 1 free chunks"
run "$fmtool" check --json "$dir/fresh.fm"
expect_rc 0
expect_json
[ "$(json_get status)" = clean ] || fail "json status: $out"
[ "$(json_get allocated_count)" = 0 ] || fail "json allocated_count: $out"

f=$dir/r.fm
"$mk" random "$f" 500 11 || fail "make_arena random"
run "$fmtool" check "$f"
expect_rc 0
expect_out ': clean: [1-9][0-9]* blocks allocated'
expect_no_out 'recovered'

# Dirty arenas check clean (recovered in a private view), file unchanged.
for how in exit kill; do
    d=$dir/dirty-$how.fm
    make_dirty $how "$d" 5
    run "$fmtool" check "$d"
    expect_rc 0
    expect_out ': clean: '
    expect_out 'note: the arena was dirty'
    run "$fmtool" check --json "$d"
    expect_json
    [ "$(json_get recovered)" = true ] || fail "json recovered ($how): $out"
    expect_same_file "$dir/before" "$d" "check on a dirty arena ($how)"
done

# A damaged chunk header: exit 1 naming the chunk.
c=$("$mk" first-chunk "$f")
cp "$f" "$dir/bad-chunk.fm"
"$mk" flip "$dir/bad-chunk.fm" $((c + 15)) # the head's tag byte
run "$fmtool" check "$dir/bad-chunk.fm"
expect_rc 1
expect_one_error_line
expect_err "^fmtool: $dir/bad-chunk.fm: corrupt: chunk at $c has a damaged header"
run "$fmtool" check --json "$dir/bad-chunk.fm"
expect_rc 1
expect_json
expect_out '"status": "corrupt"'
expect_out "\"reason\": \"chunk at $c has a damaged header"

# A dirty arena whose heap is damaged cannot be recovered: fm_open itself
# fails with FM_ECORRUPT, still exit 1 with the reason.
cp "$dir/dirty-exit.fm" "$dir/bad-dirty.fm"
c=$("$mk" first-chunk "$dir/bad-dirty.fm")
"$mk" flip "$dir/bad-dirty.fm" $((c + 15))
cp "$dir/bad-dirty.fm" "$dir/before"
run "$fmtool" check "$dir/bad-dirty.fm"
expect_rc 1
expect_one_error_line
expect_err 'cannot be recovered'
expect_err "chunk at $c has a damaged header"
expect_same_file "$dir/before" "$dir/bad-dirty.fm" "check on an unrecoverable arena"

# Damaged identity: exit 2 with the checksum message.
cp "$f" "$dir/bad-id.fm"
"$mk" flip "$dir/bad-id.fm" 30
run "$fmtool" check "$dir/bad-id.fm"
expect_rc 2
expect_one_error_line
expect_err 'header is damaged: its checksum does not match'
run "$fmtool" check --json "$dir/bad-id.fm"
expect_rc 2
expect_json
expect_out '"name": "FM_ECHECKSUM"'
expect_out '"status": "error"'

# A damaged state part of a clean arena: the header checks refuse it (2).
cp "$f" "$dir/bad-state.fm"
"$mk" flip "$dir/bad-state.fm" 200
run "$fmtool" check "$dir/bad-state.fm"
expect_rc 2
expect_err 'checksum does not match: state checksum mismatch'

# Empty and zero-filled files.
: >"$dir/empty.fm"
run "$fmtool" check "$dir/empty.fm"
expect_rc 2
expect_one_error_line
expect_err 'The file is empty or zero-filled, not yet an arena'
head -c 65536 /dev/zero >"$dir/zero.fm"
run "$fmtool" check "$dir/zero.fm"
expect_rc 2
expect_err 'empty or zero-filled'

# Locked by a writer: exit 2, FM_ELOCKED's message.
hold_arena "$f"
run "$fmtool" check "$f"
expect_rc 2
expect_one_error_line
expect_err 'open (in another process|elsewhere)'
run "$fmtool" check --json "$f"
expect_json
expect_out '"name": "FM_ELOCKED"'
release_arena
run "$fmtool" check "$f"
expect_rc 0

finish
