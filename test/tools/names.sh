#!/bin/bash
# names.sh FMTOOL MAKE_ARENA -- fmtool names: the name directory with sizes,
# as text and JSON; an arena without names; a damaged directory is corrupt.
source "$(dirname "$0")/lib.sh"

"$mk" fresh "$dir/fresh.fm" || fail "make_arena fresh"
run "$fmtool" names "$dir/fresh.fm"
expect_rc 0
[ -z "$out" ] || fail "names of a fresh arena: '$out'"
run "$fmtool" names --json "$dir/fresh.fm"
expect_rc 0
expect_json
expect_out '"count": 0'

f=$dir/named.fm
"$mk" named "$f" || fail "make_arena named"
cp "$f" "$dir/before"
run "$fmtool" names "$f"
expect_rc 0
expect_out '^ +5000 +[0-9]+  big$'
expect_out '^ +104 +[0-9]+  counts$'
expect_out '^ +- +4096  root$'
expect_out '^ +24 +[0-9]+  item/001$'
[ "$(grep -c 'item/' <<<"$out")" = 100 ] || fail "expected 100 item names"
grep -q 'item/000' <<<"$out" && fail "an unbound name is listed"
[ "$(head -1 <<<"$out" | awk '{print $3}')" = big ] || fail "not sorted by name"
expect_same_file "$dir/before" "$f" "names"
run "$fmtool" names --json "$f"
expect_rc 0
expect_json
expect_out '"count": 103'
expect_out '"name": "root", "offset": 4096, "size": null'

# A damaged directory: the table's count (sb_names, superblock word 184,
# is the table's offset; the count is its third word).
tbl=$(od -An -tu8 -j184 -N8 "$f" | tr -d ' ')
[ "${tbl:-0}" -gt 0 ] || fail "no sb_names in the named arena"
printf '\x99' | dd of="$f" bs=1 seek=$((tbl + 16)) conv=notrunc status=none
run "$fmtool" names "$f"
expect_rc 1
expect_err 'name directory: table counts disagree'
run "$fmtool" check "$f"
expect_rc 1
finish
