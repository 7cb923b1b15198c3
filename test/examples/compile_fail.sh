#!/bin/bash
# compile_fail.sh "CC ARGS" INCLUDE_DIR -- FM_PTR_SET with a pointer of the
# wrong type must not compile, while the same program with the right types
# compiles without a warning (so the test cannot pass for another reason).
# Repeated with clang when it is on PATH, and as C++11 with g++ and clang++
# when they are (where FM_PTR_GET must also return the typed pointer).
set -u
read -r -a cc <<<"$1"
inc=$2
dir=$(mktemp -d "${TMPDIR:-/tmp}/fmcf.XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# program BODY -- a translation unit around one statement
program() {
    cat <<PROG
#include <fmalloc.h>
#include <stddef.h>
struct node { int val; FM_PTR(struct node) next; };
struct other { int val; };
int use(struct fm_info *fi, struct node *n, struct node *m, struct other *o);
int use(struct fm_info *fi, struct node *n, struct node *m, struct other *o)
{
    static int some_int;
    void *anything = m;
    (void)some_int; (void)anything; (void)o; (void)m;
    $1;
    struct node *back = FM_PTR_GET(fi, n->next);
    return back != NULL;
}
PROG
}

c_flags=(-std=c11 -D_DEFAULT_SOURCE -Wall -Wextra -Wpedantic -I"$inc" -c)
cxx_flags=(-x c++ -std=c++11 -Wall -Wextra -Wpedantic -I"$inc" -c)
flags=("${c_flags[@]}")

check() { # NAME CC...
    local name=$1
    shift
    local i=0 body
    for body in "FM_PTR_SET(fi, n->next, m)" "FM_PTR_SET(fi, n->next, NULL)" \
        "FM_PTR_SET(fi, n->next, anything)" "n->next.off = 0"; do
        i=$((i + 1))
        program "$body" >"$dir/good$i.c"
        if ! "$@" "${flags[@]}" -Werror "$dir/good$i.c" -o "$dir/good$i.o" 2>"$dir/err"; then
            fail "$name: the correct program '$body' does not compile cleanly:"
            cat "$dir/err" >&2
        fi
    done
    i=0
    for body in "FM_PTR_SET(fi, n->next, &some_int)" "FM_PTR_SET(fi, n->next, o)" \
        "FM_PTR_SET(fi, n->next, &n->val)" "FM_PTR_SET(fi, n->next, (char *)m)"; do
        i=$((i + 1))
        program "$body" >"$dir/bad$i.c"
        if "$@" "${flags[@]}" "$dir/bad$i.c" -o "$dir/bad$i.o" 2>"$dir/err"; then
            fail "$name: '$body' compiled (a wrong pointer type must be an error)"
        else
            echo "$name: '$body' rejected: $(grep -m1 -i error "$dir/err")"
        fi
    done
}

check "${cc[*]}" "${cc[@]}"
if command -v clang >/dev/null 2>&1; then
    check clang clang
fi
flags=("${cxx_flags[@]}")
for cxx in g++ clang++; do
    if command -v $cxx >/dev/null 2>&1; then
        check "$cxx (C++11)" $cxx
    fi
done

if [ $failures -ne 0 ]; then
    echo "$failures failures" >&2
    exit 1
fi
echo "compile-fail checks: ok"
