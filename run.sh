#!/usr/bin/env bash
# run.sh -- the README's two commands.
#
#   ./run.sh demo   install what is missing, build, run the examples twice
#   ./run.sh test   install what is missing, build, run every test suite,
#                   then the sanitizer / Valgrind / ThreadSanitizer / fuzz runs
#
# Works on a fresh Debian 12 machine as root (apt-get installs what is
# missing; nothing is installed when it is all there).  Ends with the line
# "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")"

BASE_PKGS=(meson ninja-build pkg-config gcc g++ libxxhash-dev python3 scdoc)
# cmake, man-db, make, binutils, bash-completion: the packaging and docs suites;
# libboost-dev: the C++ container tests
TEST_PKGS=(valgrind clang libclang-rt-14-dev util-linux cmake man-db make binutils bash-completion
    libboost-dev)

install_missing() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    echo "== installing: ${missing[*]}"
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
}

build() { # build DIR [meson options...]
    local dir=$1
    shift
    if [ ! -f "$dir/build.ninja" ]; then
        meson setup "$dir" "$@" >/dev/null
    fi
    ninja -C "$dir" >/dev/null
}

demo() {
    install_missing "${BASE_PKGS[@]}"
    build build
    local d=build/demo
    rm -rf "$d" && mkdir -p "$d"
    echo "== examples/list: first run creates the arena and appends 10 nodes"
    build/examples/list "$d/list.fm"
    echo "== examples/list: second run (a new process) reads them back"
    build/examples/list "$d/list.fm"
    echo "== examples/kv: three processes put, a fourth reads"
    build/examples/kv "$d/kv.fm" put language C11
    build/examples/kv "$d/kv.fm" put heap "in a file"
    build/examples/kv "$d/kv.fm" put survives "kill -9"
    build/examples/kv "$d/kv.fm" list
    build/examples/kv "$d/kv.fm" get heap
    build/examples/kv "$d/kv.fm" stats
    if [ -x build/tools/fmtool ]; then
        echo "== fmtool: the kv arena's heap"
        build/tools/fmtool info "$d/kv.fm"
        build/tools/fmtool map "$d/kv.fm" -o "$d/kv-heap.svg" && echo "heap map written to $d/kv-heap.svg"
    fi
}

test_all() {
    install_missing "${BASE_PKGS[@]}" "${TEST_PKGS[@]}"
    build build
    echo "== test suites (build/)"
    local rc=0
    rm -f build*/meson-logs/*.json # every run below writes its own; count only these
    meson test -C build --print-errorlogs --num-processes 2 --logbase suites || rc=1
    if [ -f scripts/ci-extra.sh ]; then
        echo "== sanitizers, Valgrind, ThreadSanitizer, fuzzing"
        bash scripts/ci-extra.sh || rc=1
    fi
    echo "== benchmarks: a smoke run of every arm and workload (not timed)"
    bash bench/run.sh --smoke >build/bench-smoke.log 2>&1 || {
        echo "bench smoke run FAILED:"
        tail -20 build/bench-smoke.log
        rc=1
    }
    tail -1 build/bench-smoke.log
    echo "== totals"
    python3 scripts/test_totals.py build build-asan build-tsan build-fuzz build-debug3 || rc=1
    return $rc
}

case "${1:-}" in
demo) demo ;;
test) test_all ;;
*)
    echo "usage: ./run.sh demo | test" >&2
    exit 2
    ;;
esac
