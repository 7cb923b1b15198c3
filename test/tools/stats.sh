#!/bin/bash
# stats.sh FMTOOL MAKE_ARENA -- fmtool stats: figures, the size-class
# histogram and fragmentation, on fresh, random, dirty, damaged and empty
# arenas.
source "$(dirname "$0")/lib.sh"

"$mk" fresh "$dir/fresh.fm" || fail "make_arena fresh"
run "$fmtool" stats "$dir/fresh.fm"
expect_rc 0
expect_out '^allocated: +0 bytes in 0 blocks'
expect_out '^free: +1036288 bytes \(1012.0 KiB\) in 1 chunks, top included$'
expect_out '^top: +1036288 '
expect_out '^fragmentation: +0\.000 '
expect_out '^file / allocated: +n/a '
expect_out '^recovered: +no$'
expect_out '^punched: +0 bytes '
expect_out '^on disk: +[0-9]+ bytes '
run "$fmtool" stats --json "$dir/fresh.fm"
expect_rc 0
expect_json
[ "$(json_get file_per_allocated)" = null ] || fail "json file_per_allocated: $out"
expect_out '"size_classes": \[\]'

f=$dir/r.fm
"$mk" random "$f" 800 21 || fail "make_arena random"
cp "$f" "$dir/before"
run "$fmtool" stats "$f"
expect_rc 0
expect_out '^size classes \(chunk sizes, headers included; the top is not counted\):'
expect_out '^  \[32, 64\) +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+$'
expect_out '^  \[4K, 8K\) +'
expect_out '^fragmentation: +0\.[0-9]{3} \(1 - largest free / free bytes\)$'
expect_out '^file / allocated: +[0-9]+\.[0-9]{3} '
expect_same_file "$dir/before" "$f" "stats"
run "$fmtool" stats --json "$f"
expect_rc 0
expect_json
if $have_python; then
    # The histogram adds up to the totals; fragmentation is what it says.
    python3 -c '
import json, sys
s = json.load(sys.stdin)
h = s["size_classes"]
def total(k): return sum(c[k] for c in h)
assert total("allocated_count") == s["allocated_count"], "allocated count"
assert total("allocated_bytes") == s["allocated_bytes"], "allocated bytes"
assert total("free_count") == s["free_blocks_outside_top"], "free count"
assert total("free_bytes") == s["free_bytes_outside_top"], "free bytes"
assert s["free_bytes_outside_top"] + s["top_size"] == s["free_bytes"]
assert s["allocated_bytes"] + s["free_bytes"] == s["heap_size"]
assert s["heap_size"] + 12288 == s["file_size"]
for c in h:
    assert c["max"] == 2 * c["min"] and c["allocated_count"] + c["free_count"] > 0
    assert c["allocated_count"] == 0 or c["min"] * c["allocated_count"] <= c["allocated_bytes"] < c["max"] * c["allocated_count"]
f = 1 - s["largest_free"] / s["free_bytes"]
assert abs(s["fragmentation"] - f) < 1e-5, (s["fragmentation"], f)
assert abs(s["file_per_allocated"] - s["file_size"] / s["allocated_bytes"]) < 1e-3
assert s["allocated_count"] > 300 and s["recovered"] is False
' <<<"$out" || fail "stats --json figures do not add up: $out"
fi

# A big free chunk goes back to the file system: punched, less on disk.
"$mk" big-sparse "$dir/big.fm" >/dev/null || fail "make_arena big-sparse"
run "$fmtool" stats --json "$dir/big.fm"
expect_rc 0
expect_json
checks=$((checks + 1))
[ "$(json_get punched_bytes)" -ge $((56 << 20)) ] || fail "big-sparse: punched $(json_get punched_bytes)"
checks=$((checks + 1))
[ "$(json_get disk_bytes)" = $(( $(stat -c %b "$dir/big.fm") * 512 )) ] || fail "disk_bytes: $out"

"$mk" dirty "$dir/dirty.fm" 200 4 || fail "make_arena dirty"
run "$fmtool" stats "$dir/dirty.fm"
expect_rc 0
expect_out '^recovered: +yes '
run "$fmtool" stats --json "$dir/dirty.fm"
expect_json
[ "$(json_get recovered)" = true ] || fail "json recovered: $out"

c=$("$mk" first-chunk "$f")
cp "$f" "$dir/bad-chunk.fm"
"$mk" flip "$dir/bad-chunk.fm" $((c + 15))
run "$fmtool" stats "$dir/bad-chunk.fm"
expect_rc 1
expect_one_error_line
expect_err "chunk at $c has a damaged header"
run "$fmtool" stats --json "$dir/bad-chunk.fm"
expect_json
expect_out '"status": "corrupt"'

cp "$f" "$dir/bad-id.fm"
"$mk" flip "$dir/bad-id.fm" 30
run "$fmtool" stats "$dir/bad-id.fm"
expect_rc 2
expect_one_error_line
expect_err 'header is damaged: its checksum does not match'
cp "$f" "$dir/bad-magic.fm"
"$mk" flip "$dir/bad-magic.fm" 5
run "$fmtool" stats "$dir/bad-magic.fm"
expect_rc 2
expect_err 'Not an fmalloc arena'

: >"$dir/empty.fm"
run "$fmtool" stats "$dir/empty.fm"
expect_rc 2
expect_one_error_line
expect_err 'empty or zero-filled'

finish
