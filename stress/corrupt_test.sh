#!/usr/bin/env bash
# corrupt_test.sh MMAP_STRESS
#
# mmap_stress must notice damage instead of trusting it:
#   1. one payload byte of a recorded live block changed inside store.alloc:
#      the next run exits 1 naming the block ("block I at offset OFF", OFF in
#      decimal, as --dump-blocks prints it);
#   2. a byte of blocks.alloc changed, or the file truncated: exit 1,
#      "blocks.alloc is damaged", and store.alloc is left untouched;
#   3. blocks.alloc missing beside an existing store.alloc: exit 1.
set -u

exe=${1:?usage: corrupt_test.sh MMAP_STRESS}
work=$(mktemp -d "${TMPDIR:-/tmp}/mmap_corrupt.XXXXXX") || exit 1
out=""

fail() {
    echo "corrupt_test: FAILED: $*" >&2
    echo "----- tool output -----" >&2
    printf '%s\n' "$out" >&2
    echo "corrupt_test: files kept in $work" >&2
    exit 1
}

run_ok() { # DIR: one successful run
    out=$("$exe" --dir "$1" --quiet 2>&1) || fail "setup run in $1 exited $?"
}

# Expect the next run on DIR to exit 1 with output matching REGEX.
expect_failure() { # DIR REGEX WHAT
    out=$("$exe" --dir "$1" 2>&1)
    local rc=$?
    [[ $rc == 1 ]] || fail "$3: expected exit status 1, got $rc"
    grep -Eq "$2" <<<"$out" || fail "$3: output does not match /$2/"
    echo "corrupt_test: $3: detected"
}

write_byte() { # FILE POS BYTE(0-255)
    printf "$(printf '\\%03o' "$3")" |
        dd of="$1" bs=1 seek="$2" conv=notrunc status=none || fail "cannot write $1"
}

read_byte() { # FILE POS
    od -An -tu1 -j "$2" -N1 "$1" | tr -d ' '
}

# 1. A payload byte of a live block.
d=$work/payload
line=""
for attempt in 1 2 3 4 5 6 7 8; do
    run_ok "$d"
    (( attempt < 2 )) && continue # at least two runs
    line=$("$exe" --dir "$d" --dump-blocks | awk '$2 > 0 { print; exit }')
    [[ -n $line ]] && break       # (a run may rarely end with no non-empty block)
done
[[ -n $line ]] || fail "no non-empty live block recorded after $attempt runs"
read -r off size fill <<<"$line"
pos=$((off + size / 2))
old=$(read_byte "$d/store.alloc" "$pos")
[[ $old == $(printf '%d' "'$fill") ]] || fail "byte $pos of store.alloc is $old, not '$fill'"
write_byte "$d/store.alloc" "$pos" 35 # '#', never a fill value
echo "corrupt_test: changed byte $pos of the block at offset $off (size $size, fill '$fill')"
expect_failure "$d" "block [0-9]+ at offset $off " "payload byte at offset $pos"

# 2. blocks.alloc damaged: a changed byte, then a truncated file.
d=$work/record
run_ok "$d"
run_ok "$d"
cp -p "$d/blocks.alloc" "$work/blocks.good"
cp -p "$d/store.alloc" "$work/store.good"
len=$(stat -c %s "$d/blocks.alloc")
for pos in 0 40 $((len / 2)) $((len - 1)); do
    cp -p "$work/blocks.good" "$d/blocks.alloc"
    write_byte "$d/blocks.alloc" "$pos" $(( $(read_byte "$d/blocks.alloc" "$pos") ^ 0x55 ))
    expect_failure "$d" "blocks\.alloc is damaged" "blocks.alloc byte $pos changed"
    cmp -s "$d/store.alloc" "$work/store.good" || fail "store.alloc changed by a refused run"
done
cp -p "$work/blocks.good" "$d/blocks.alloc"
truncate -s $((len - 16)) "$d/blocks.alloc"
expect_failure "$d" "blocks\.alloc is damaged" "blocks.alloc truncated"
cmp -s "$d/store.alloc" "$work/store.good" || fail "store.alloc changed by a refused run"

# 3. blocks.alloc missing.
rm -f "$d/blocks.alloc"
expect_failure "$d" "blocks\.alloc does not" "blocks.alloc missing"

# The undamaged files still make a good run.
cp -p "$work/blocks.good" "$d/blocks.alloc"
run_ok "$d"

rm -rf "$work"
echo "corrupt_test: all damage detected"
