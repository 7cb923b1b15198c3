#!/bin/bash
# map.sh FMTOOL MAKE_ARENA -- fmtool map: the SVG parses, names the figures
# fmtool stats reports, scales a big arena into a bounded picture, and a
# corrupt heap is refused.
source "$(dirname "$0")/lib.sh"

# stat_of FILE: sets the figures from `fmtool stats --json`.
stat_of() {
    run "$fmtool" stats --json "$1"
    ab=$(json_get allocated_bytes)
    ac=$(json_get allocated_count)
    fb=$(( $(json_get free_bytes) - $(json_get top_size) ))
    fc=$(( $(json_get free_blocks) - 1 ))
    top=$(json_get top_size)
    fs=$(json_get file_size)
    pb=$(json_get punched_bytes)
}
# expect_figures SVG: the legend names them.
expect_figures() {
    local t
    t=$(cat "$1")
    local h='( \([0-9.]+ [KMGT]iB\))?'
    for want in "allocated: $ab bytes$h in $ac blocks" "free: $fb bytes$h in $fc chunks" \
        "top: $top bytes" "punched: $pb bytes" "file size: $fs bytes" '1 px = [0-9]+ bytes' 'superblock' \
        '>root<' '>heap<' '>legend<'; do
        checks=$((checks + 1))
        grep -Eq -- "$want" <<<"$t" || fail "$1 lacks /$want/"
    done
}

f=$dir/r.fm
"$mk" random "$f" 600 31 || fail "make_arena random"
cp "$f" "$dir/before"
run "$fmtool" map "$f" -o "$dir/heap.svg"
expect_rc 0
expect_out "^$dir/heap.svg: [0-9]+ rows, 1 px = [0-9]+ bytes; [0-9]+ allocated, [0-9]+ free \([0-9]+ punched\) chunks, top [0-9]+ bytes"
expect_xml "$dir/heap.svg"
stat_of "$f"
expect_figures "$dir/heap.svg"
expect_same_file "$dir/before" "$f" "map"
if $have_python; then
    # Every rect and text lies inside the picture; the heap uses all three kinds.
    python3 -c '
import sys, xml.etree.ElementTree as ET
ns = "{http://www.w3.org/2000/svg}"
root = ET.parse(sys.argv[1]).getroot()
W, H = int(root.get("width")), int(root.get("height"))
fills = set()
for r in root.iter(ns + "rect"):
    x, y = int(r.get("x", 0)), int(r.get("y", 0))
    w, h = int(r.get("width")), int(r.get("height"))
    assert 0 <= x and x + w <= W and 0 <= y and y + h <= H, (x, y, w, h, W, H)
    fills.add(r.get("fill"))
for t in root.iter(ns + "text"):
    assert 0 < int(t.get("y")) <= H - 4, (t.get("y"), H)
for c in ("#d64b3c", "#4caf50", "#a8cff0"):
    assert c in fills, c
' "$dir/heap.svg" || fail "heap.svg layout"
fi

# --output=, and stdout.
run "$fmtool" map --output="$dir/o2.svg" "$f"
expect_rc 0
expect_xml "$dir/o2.svg"
"$fmtool" map "$f" >"$dir/stdout.svg" || fail "map to stdout"
expect_xml "$dir/stdout.svg"
cmp -s "$dir/o2.svg" "$dir/stdout.svg" || fail "map to stdout differs from -o"

# A fresh arena: one top chunk.
"$mk" fresh "$dir/fresh.fm" || fail "make_arena fresh"
run "$fmtool" map "$dir/fresh.fm" -o "$dir/fresh.svg"
expect_rc 0
expect_out ': 64 rows, 1 px = 16 bytes; 0 allocated, 0 free \(0 punched\) chunks, top 1036288 bytes '
grep -q '<rect x="120" y="[0-9]*" width="1" height="10" fill="#7e9bb4"/>' "$dir/fresh.svg" ||
    fail "fresh.svg: the top's first row does not start with a darker start pixel"
expect_xml "$dir/fresh.svg"
stat_of "$dir/fresh.fm"
expect_figures "$dir/fresh.svg"

# A dirty arena maps its recovered heap.
"$mk" dirty "$dir/dirty.fm" 200 8 kill || fail "make_arena dirty"
cp "$dir/dirty.fm" "$dir/before"
run "$fmtool" map "$dir/dirty.fm" -o "$dir/dirty.svg"
expect_rc 0
expect_xml "$dir/dirty.svg"
grep -q 'recovered view of a dirty arena' "$dir/dirty.svg" || fail "dirty map does not say so"
expect_same_file "$dir/before" "$dir/dirty.fm" "map on a dirty arena"

# A 64 MiB arena: 1 KiB per pixel, at most 64 rows, a small file.
"$mk" big-sparse "$dir/big.fm" >/dev/null || fail "make_arena big-sparse"
run "$fmtool" map "$dir/big.fm" -o "$dir/big.svg"
expect_rc 0
expect_out '^.*: 64 rows, 1 px = 1024 bytes; 1 allocated, 1 free \(1 punched\) chunks'
grep -q 'fill="#bdbdbd"' "$dir/big.svg" || fail "big.svg shows no punched chunk"
expect_xml "$dir/big.svg"
stat_of "$dir/big.fm"
expect_figures "$dir/big.svg"
size=$(stat -c %s "$dir/big.svg")
[ "$size" -lt 200000 ] || fail "big.svg is $size bytes"

# File names that need escaping in XML.
cp "$f" "$dir/a&b<c>.fm"
run "$fmtool" map "$dir/a&b<c>.fm" -o "$dir/esc.svg"
expect_rc 0
expect_xml "$dir/esc.svg"

# Refusals: corrupt heap (1, nothing written), damaged, empty, unwritable (2).
c=$("$mk" first-chunk "$f")
cp "$f" "$dir/bad-chunk.fm"
"$mk" flip "$dir/bad-chunk.fm" $((c + 15))
run "$fmtool" map "$dir/bad-chunk.fm" -o "$dir/bad.svg"
expect_rc 1
expect_one_error_line
expect_err "corrupt, not mapping it: chunk at $c"
[ -e "$dir/bad.svg" ] && fail "map of a corrupt heap wrote a file"
cp "$f" "$dir/bad-id.fm"
"$mk" flip "$dir/bad-id.fm" 30
run "$fmtool" map "$dir/bad-id.fm" -o "$dir/bad.svg"
expect_rc 2
expect_err 'checksum does not match'
: >"$dir/empty.fm"
run "$fmtool" map "$dir/empty.fm" -o "$dir/bad.svg"
expect_rc 2
expect_err 'empty or zero-filled'
[ -e "$dir/bad.svg" ] && fail "a failed map wrote a file"
run "$fmtool" map "$f" -o "$dir/no/such/dir/x.svg"
expect_rc 2
expect_one_error_line
expect_err 'cannot write the map'

finish
