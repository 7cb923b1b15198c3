#!/bin/bash
# snapshot.sh FMTOOL MAKE_ARENA -- fmtool snapshot: the copy has the same
# blocks, opens and checks clean, keeps holes sparse, and is refused when it
# would overwrite, copy onto itself, race a writer or copy a corrupt heap.
source "$(dirname "$0")/lib.sh"

# blocks_of FILE: make_arena's hash of every block.
blocks_of() { "$mk" hash "$1" || echo "hash failed for $1"; }
no_leftovers() {
    checks=$((checks + 1))
    ls -a "$dir" | grep -q 'fmtool-' && fail "$1: temporary files left: $(ls "$dir")"
}

f=$dir/r.fm
"$mk" random "$f" 700 41 || fail "make_arena random"
cp "$f" "$dir/before"
run "$fmtool" snapshot "$f" "$dir/copy.fm"
expect_rc 0
expect_out "^$dir/copy.fm: snapshot of $f, [0-9]+ bytes .*checked clean$"
expect_out '(reflink|sparse copy|plain copy)'
[ "$(blocks_of "$f")" = "$(blocks_of "$dir/copy.fm")" ] || fail "copy has other blocks"
expect_same_file "$dir/before" "$f" "snapshot source"
run "$fmtool" check "$dir/copy.fm"
expect_rc 0
id() { "$fmtool" info --json "$1" | sed -n 's/^  "arena_id": "\(.*\)",$/\1/p'; }
[ "$(id "$f")" = "$(id "$dir/copy.fm")" ] || fail "copy has another arena id"
[ "$(stat -c %a "$f")" = "$(stat -c %a "$dir/copy.fm")" ] || fail "copy has other permissions"
no_leftovers "snapshot"

# COPY exists: refused without --force (and left alone), replaced with it.
echo "keep me" >"$dir/exists"
run "$fmtool" snapshot "$f" "$dir/exists"
expect_rc 2
expect_one_error_line
expect_err 'exists; not overwriting it \(use --force'
[ "$(cat "$dir/exists")" = "keep me" ] || fail "snapshot overwrote an existing file"
run "$fmtool" snapshot --force "$f" "$dir/exists"
expect_rc 0
[ "$(blocks_of "$f")" = "$(blocks_of "$dir/exists")" ] || fail "--force copy has other blocks"
run "$fmtool" snapshot "$f" "$f" --force
expect_rc 2
expect_err 'is the arena itself'
ln -s "$f" "$dir/link.fm"
run "$fmtool" snapshot -f "$f" "$dir/link.fm"
expect_rc 2
expect_err 'is the arena itself'
expect_same_file "$dir/before" "$f" "snapshot onto itself"

# A writer has it open: FM_ELOCKED, no copy, nothing left behind.
hold_arena "$f"
run "$fmtool" snapshot "$f" "$dir/locked.fm"
expect_rc 2
expect_one_error_line
expect_err 'open (in another process|elsewhere)'
[ -e "$dir/locked.fm" ] && fail "snapshot of a locked arena left a copy"
release_arena
no_leftovers "locked snapshot"

# A dirty arena: the copy is the same crash image, recovered the same way.
"$mk" dirty "$dir/dirty.fm" 300 9 kill || fail "make_arena dirty"
run "$fmtool" snapshot "$dir/dirty.fm" "$dir/dirty-copy.fm"
expect_rc 0
expect_same_file "$dir/dirty.fm" "$dir/dirty-copy.fm" "dirty snapshot (byte-identical)"
"$fmtool" info "$dir/dirty-copy.fm" | grep -Eq '^state: +dirty' || fail "dirty copy is not dirty"
[ "$(blocks_of "$dir/dirty.fm")" = "$(blocks_of "$dir/dirty-copy.fm")" ] ||
    fail "dirty copy has other blocks"

# A corrupt heap is not copied (exit 1), and nothing is left behind.
c=$("$mk" first-chunk "$f")
cp "$f" "$dir/bad-chunk.fm"
"$mk" flip "$dir/bad-chunk.fm" $((c + 15))
run "$fmtool" snapshot "$dir/bad-chunk.fm" "$dir/bad-copy.fm"
expect_rc 1
expect_one_error_line
expect_err "corrupt, not copied.*chunk at $c"
[ -e "$dir/bad-copy.fm" ] && fail "snapshot of a corrupt heap left a copy"
no_leftovers "corrupt snapshot"
cp "$f" "$dir/bad-id.fm"
"$mk" flip "$dir/bad-id.fm" 30
run "$fmtool" snapshot "$dir/bad-id.fm" "$dir/bad-id-copy.fm"
expect_rc 2
expect_one_error_line
expect_err 'header is damaged: its checksum does not match'
[ -e "$dir/bad-id-copy.fm" ] && fail "snapshot of a damaged header left a copy"
: >"$dir/empty.fm"
run "$fmtool" snapshot "$dir/empty.fm" "$dir/empty-copy.fm"
expect_rc 2
expect_err 'empty or zero-filled'
[ -e "$dir/empty-copy.fm" ] && fail "snapshot of an empty file left a copy"

# Sparse: fmalloc punched the big free chunk out of the source; the copy
# keeps that hole, and has real blocks everywhere else (as fmalloc keeps
# its own files: a hole only inside a punched chunk).
big=$dir/big.fm
"$mk" big-sparse "$big" >/dev/null || fail "make_arena big-sparse"
run "$fmtool" stats --json "$big"
punched=$(json_get punched_bytes)
run "$fmtool" snapshot "$big" "$dir/big-copy.fm"
expect_rc 0
[ "$(blocks_of "$big")" = "$(blocks_of "$dir/big-copy.fm")" ] || fail "big copy has other blocks"
src_used=$(( $(stat -c %b "$big") * 512 ))
copy_used=$(( $(stat -c %b "$dir/big-copy.fm") * 512 ))
copy_size=$(stat -c %s "$dir/big-copy.fm")
checks=$((checks + 1))
[ "$copy_size" = $((64 << 20)) ] || fail "big copy is $copy_size bytes"
checks=$((checks + 1))
[ "$copy_used" -le $((src_used + (1 << 20))) ] ||
    fail "copy uses $copy_used bytes on disk, the source $src_used"
if [ "$src_used" -lt $((copy_size / 2)) ]; then
    checks=$((checks + 1))
    [ "$copy_used" -lt $((copy_size / 2)) ] ||
        fail "sparse source ($src_used bytes used) gave a dense copy ($copy_used of $copy_size)"
    checks=$((checks + 1))
    [ "$copy_used" -ge $((copy_size - punched - (1 << 20))) ] ||
        fail "copy has holes outside punched chunks: $copy_used bytes used, $punched punched"
else
    echo "note: this file system kept the punched blocks ($src_used bytes used)"
fi
echo "big arena: $copy_size bytes, $punched punched; on disk: source $src_used, copy $copy_used"

# A fresh arena: its never-written top is preallocated in the source (it may
# read as a hole to SEEK_HOLE); the copy must own those blocks as well.
"$mk" fresh "$dir/fresh.fm" $((8 << 20)) || fail "make_arena fresh"
run "$fmtool" snapshot "$dir/fresh.fm" "$dir/fresh-copy.fm"
expect_rc 0
fresh_src=$(( $(stat -c %b "$dir/fresh.fm") * 512 ))
fresh_copy=$(( $(stat -c %b "$dir/fresh-copy.fm") * 512 ))
checks=$((checks + 1))
[ "$fresh_copy" -ge $((fresh_src - (64 << 10))) ] ||
    fail "fresh copy uses $fresh_copy bytes on disk, the source $fresh_src: holes in the top"

finish
