#!/bin/bash
# info.sh FMTOOL MAKE_ARENA -- fmtool info on fresh, dirty, locked, damaged,
# truncated and empty files; it never changes the file.
source "$(dirname "$0")/lib.sh"
f=$dir/a.fm

"$mk" fresh "$f" || fail "make_arena fresh"
cp "$f" "$dir/before"
run "$fmtool" info "$f"
expect_rc 0
expect_out "^file: +$f$"
expect_out '^format version: +2$'
expect_out '^arena id: +[0-9a-f]{32}$'
expect_out '^created: +[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$'
expect_out '^page size: +[0-9]+$'
expect_out '^superblock: +\[0, 4096\), 4096 bytes'
expect_out '^root: +\[4096, 12288\), 8192 bytes'
expect_out '^heap: +\[12288, 1048576\), 1036288 bytes'
expect_out '^file size: +1048576 bytes recorded, 1048576 real$'
expect_out '^state: +clean'
expect_out '^generation: +1$'
expect_out '^log records: +0 pending$'
expect_out '^top: +\[12288, 1048576\), 1036288 bytes'
expect_out '^state checksum: +ok$'
expect_out '^state check: +ok$'
expect_out '^journal: +none'
expect_same_file "$dir/before" "$f" "info on a clean arena"
year=$(date -u +%Y)
expect_out "^created: +$year-"

run "$fmtool" info --json "$f"
expect_rc 0
expect_json
[ "$(json_get state)" = clean ] || fail "json state: $(json_get state)"
[ "$(json_get dirty)" = false ] || fail "json dirty: $(json_get dirty)"
[ "$(json_get file_size_recorded)" = 1048576 ] || fail "json file size: $out"
[ "$(json_get top_size)" = 1036288 ] || fail "json top size: $out"
[ "$(json_get heap_offset)" = 12288 ] || fail "json heap offset: $out"
[ "$(json_get format_version)" = 2 ] || fail "json version: $out"
expect_out '"arena_id": "[0-9a-f]{32}"'

# An FM_DURABLE writer died after a commit: its journal waits, shown.
"$mk" durable "$dir/durable.fm" || fail "make_arena durable"
run "$fmtool" info "$dir/durable.fm"
expect_rc 0
expect_out '^journal: +1 commits since the arena was last synced, the last commit 1 of its open \([0-9]+ pages, file size 1048576\)'
run "$fmtool" info --json "$dir/durable.fm"
[ "$(json_get journal)" = pending ] || fail "json journal: $out"
# A damaged record ends the records: none is left to apply.
printf x | dd of="$dir/durable.fm-journal" bs=1 seek=9000 conv=notrunc status=none
run "$fmtool" info "$dir/durable.fm"
expect_out '^journal: +empty'
# A damaged header voids the journal (byte 40 is reserved, zero: 'x'
# always changes it).
printf x | dd of="$dir/durable.fm-journal" bs=1 seek=40 conv=notrunc status=none
run "$fmtool" info "$dir/durable.fm"
expect_out '^journal: +invalid'

# Dirty: a writer _exit()ed without closing; and one killed mid-operation.
for how in exit kill; do
    d=$dir/dirty-$how.fm
    make_dirty $how "$d" 7
    run "$fmtool" info "$d"
    expect_rc 0
    expect_out '^state: +dirty'
    expect_out '^state checksum: +not kept while dirty$'
    expect_out '^log records: +[0-9]+ pending'
    run "$fmtool" info --json "$d"
    expect_rc 0
    expect_json
    [ "$(json_get dirty)" = true ] || fail "json dirty ($how): $out"
    expect_same_file "$dir/before" "$d" "info on a dirty arena ($how)"
done

# Locked: another process has it open read-write.  info still reads it.
"$mk" random "$f" 100 3 || fail "make_arena random"
hold_arena "$f"
run "$fmtool" info "$f"
expect_rc 0
expect_out '^state: +dirty'
expect_out '^generation: +3$'
release_arena
run "$fmtool" info "$f"
expect_out '^state: +clean'

# Damaged identity (a byte of sb_root_off): the checksum message, exit 2.
cp "$f" "$dir/bad-id.fm"
"$mk" flip "$dir/bad-id.fm" 30
cp "$dir/bad-id.fm" "$dir/before"
run "$fmtool" info "$dir/bad-id.fm"
expect_rc 2
expect_one_error_line
expect_err 'header is damaged: its checksum does not match'
run "$fmtool" info --json "$dir/bad-id.fm"
expect_rc 2
expect_json
expect_out '"name": "FM_ECHECKSUM"'
expect_same_file "$dir/before" "$dir/bad-id.fm" "info on a damaged arena"

# Not an arena; a torn header; an empty file.
head -c 8192 /dev/urandom >"$dir/noise"
printf 'x' | dd of="$dir/noise" conv=notrunc 2>/dev/null
run "$fmtool" info "$dir/noise"
expect_rc 2
expect_err 'Not an fmalloc arena'
head -c 100 "$f" >"$dir/torn.fm"
run "$fmtool" info "$dir/torn.fm"
expect_rc 2
expect_err 'shorter than its header says'
: >"$dir/empty.fm"
run "$fmtool" info "$dir/empty.fm"
expect_rc 2
expect_one_error_line
expect_err 'The file is empty or zero-filled, not yet an arena'
run "$fmtool" info --json "$dir/empty.fm"
expect_json
expect_out '"name": "FM_EEMPTY"'
run "$fmtool" info "$dir"
expect_rc 2
expect_err 'Is a directory'

# A damaged state part (a reserved state word): identity fine, info shows it.
cp "$f" "$dir/bad-state.fm"
"$mk" flip "$dir/bad-state.fm" 200
run "$fmtool" info "$dir/bad-state.fm"
expect_rc 0
expect_out '^state checksum: +mismatch$'
expect_out '^state check: +FAILED: The arena header is damaged'
run "$fmtool" info --json "$dir/bad-state.fm"
expect_json
[ "$(json_get state_ok)" = false ] || fail "json state_ok: $out"

# Truncated: info reports the real size beside the recorded one.
cp "$f" "$dir/short.fm"
truncate -s 65536 "$dir/short.fm"
run "$fmtool" info "$dir/short.fm"
expect_rc 0
expect_out '^file size: +1048576 bytes recorded, 65536 real \(TRUNCATED'
expect_out '^state check: +FAILED: The arena file is shorter'

finish
