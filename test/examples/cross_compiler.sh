#!/bin/bash
# cross_compiler.sh LIBFMALLOC_SO INCLUDE_DIR SRC_DIR -- the upstream-shaped
# list example (examples/upstream/list.cpp) and the layout test, unchanged,
# under g++ and clang++ with the original fmalloc's flags; each build runs
# twice on its own file, and each reads and changes the file the other wrote.
# Skipped (77) when a compiler is missing.
lib=$1
inc=$2
src=$3
source "$(dirname "$0")/lib.sh"

compilers=(g++ clang++)
for cxx in "${compilers[@]}"; do
    command -v "$cxx" >/dev/null 2>&1 || { echo "$cxx not found: skipped"; exit 77; }
done

# The original fmalloc's flags; FM_FMALLOC_INIT_EXITS gives its exit-on-error fmalloc_init.
flags=(-O3 -Werror -Wall -Wextra -std=c++11 -DFM_FMALLOC_INIT_EXITS -I"$inc")
for cxx in "${compilers[@]}"; do
    if ! "$cxx" "${flags[@]}" "$src/examples/upstream/list.cpp" -o "$dir/list-$cxx" \
        "$lib" -Wl,-rpath,"$(dirname "$lib")" 2>"$dir/err"; then
        fail "$cxx: examples/upstream/list.cpp does not build:"
        cat "$dir/err" >&2
        continue
    fi
    if "$cxx" "${flags[@]}" "$src/test/examples/test_fm_ptr_layout.cpp" -o "$dir/layout-$cxx" \
        "$lib" -Wl,-rpath,"$(dirname "$lib")" 2>"$dir/err"; then
        echo "$cxx layout: $("$dir/layout-$cxx")"
    else
        fail "$cxx: the layout test does not build:"
        cat "$dir/err" >&2
    fi
done
((failures == 0)) || exit 1

evens=$(seq 0 2 8)
for w in "${compilers[@]}"; do
    for r in "${compilers[@]}"; do
        f=$dir/$w-then-$r.fm
        out=$("$dir/list-$w" "$f") || fail "$w: first run exited $?"
        [ "$out" = "wrote 10 nodes" ] || fail "$w: first run said '$out'"
        out=$("$dir/list-$w" "$f") || fail "$w: second run exited $?"
        [ "$out" = "$(seq 0 9)" ] || fail "$w wrote, $w read: '$out'"
        out=$("$dir/list-$r" "$f" drop-odd) || fail "$r: reading $w's file exited $?"
        [ "$out" = "$(seq 0 9)" ] || fail "$w wrote, $r read: '$out'"
        out=$("$dir/list-$w" "$f") || fail "$w: reading back exited $?"
        [ "$out" = "$evens" ] || fail "$r dropped the odd nodes, $w read: '$out'"
        echo "$w wrote, $r read and changed, $w read back: ok"
    done
done

# Upstream code does not check fmalloc_init: it must exit with a message.
if "$dir/list-g++" "$dir/missing/x.fm" >/dev/null 2>"$dir/err"; then
    fail "fmalloc_init on a missing directory did not exit"
elif ! grep -q "fmalloc_init" "$dir/err"; then
    fail "no message from fmalloc_init"
fi

finish "cross-compiler checks"
