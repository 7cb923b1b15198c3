#!/usr/bin/env bash
# run_mmap_stress.sh MMAP_STRESS [RUNS]
#
# Run mmap_stress RUNS times (default 100) on one arena in a fresh temporary
# directory, stopping at the first failure.  Besides the tool's own checks,
# each run's "On start" allocated figures must equal the previous run's
# "On exit" ones, and each phase must print one dot per pass.
#
# Before every run the two files are copied to before/, so a failing run can
# be replayed: the directory is kept and the replay command printed.
set -u

exe=${1:?usage: run_mmap_stress.sh MMAP_STRESS [RUNS]}
runs=${2:-100}

work=$(mktemp -d "${TMPDIR:-/tmp}/mmap_stress.XXXXXX") || exit 1
dir=$work/arena
before=$work/before
mkdir -p "$dir" "$before" || exit 1

fail() {
    echo "run_mmap_stress: run $i of $runs FAILED: $*" >&2
    echo "----- output of run $i -----" >&2
    printf '%s\n' "$out" >&2
    echo "----- end of output -----" >&2
    echo "run_mmap_stress: files after the run: $dir" >&2
    echo "run_mmap_stress: files before the run: $before" >&2
    echo "run_mmap_stress: replay: d=\$(mktemp -d) && cp $before/* \$d/ && $exe --dir \$d" >&2
    exit 1
}

figures() { # LABEL: "bytes count" from the LABEL line of $out, or nothing
    sed -n "s/^$1: \([0-9]*\) allocated bytes (\([0-9]*\) allocations), .*/\1 \2/p" <<<"$out"
}

prev_exit=""
SECONDS=0
for ((i = 1; i <= runs; i++)); do
    rm -f "$before"/*
    if [[ -e $dir/blocks.alloc ]]; then
        cp -p "$dir/store.alloc" "$dir/blocks.alloc" "$before/" || exit 1
    fi

    out=$("$exe" --dir "$dir" 2>&1)
    rc=$?
    [[ $rc == 0 ]] || fail "exit status $rc"

    start_fig=$(figures "On start")
    exit_fig=$(figures "On exit")
    [[ -n $start_fig ]] || fail "no 'On start' line"
    [[ -n $exit_fig ]] || fail "no 'On exit' line"
    if [[ -n $prev_exit && $start_fig != "$prev_exit" ]]; then
        fail "On start (bytes count) '$start_fig' != previous run's On exit '$prev_exit'"
    fi
    grep -q '^Allocate checks: \.\{16\}$' <<<"$out" || fail "bad 'Allocate checks' line"
    grep -q '^Realloc checks: \.\{16\}$' <<<"$out" || fail "bad 'Realloc checks' line"
    prev_exit=$exit_fig

    printf 'run %3d: %s\n' "$i" "$(grep -m1 '^On start:' <<<"$out")"
done

echo "run_mmap_stress: $runs runs passed in ${SECONDS} s; last run:"
printf '%s\n' "$out"
rm -rf "$work"
