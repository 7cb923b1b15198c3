#!/usr/bin/env bash
# bench/run.sh -- fmalloc's benchmarks against its peers, in one command.
#
#   bash bench/run.sh [--smoke | --quick] [--runs N] [--write-docs]
#                     [--dir DIR] [--disk-dir DIR] [--arms a,b,..] [--workloads w,..]
#                     [--seed S] [--no-install]
#
# 1. installs the peers with apt-get when missing (jemalloc, mimalloc,
#    Boost, PMDK libpmemobj, LMDB, SQLite, g++, gnuplot-nox; skipped when
#    present);
# 2. builds the library (build-bench-lib/, buildtype=release) and the
#    harness (build-bench/, a separate Meson project in bench/);
# 3. runs bench_driver, which runs every arm on every workload, each in its
#    own bench_worker process, and prints Markdown tables on stdout; then
#    bench_containers (a Boost map in the file: fmalloc against
#    Boost.Interprocess).
#
#   --smoke       every arm and workload at toy sizes, 1 run (~10 s; for CI)
#   --quick       about a fifth of the full sizes, 3 runs
#   --runs N      runs per arm and workload (default 5 full, 3 quick, 1 smoke)
#   --write-docs  also write docs/benchmarks.md and docs/benchmarks.png
#   --dir DIR     where arena files go (default /dev/shm, a tmpfs)
#   --disk-dir DIR  where the commit workloads' files go (issue 16: commits,
#                 dirty pages, work between commits); it must be a disk file
#                 system, not a tmpfs.  Default: $BENCH_DISK_DIR, else the
#                 first of $TMPDIR, /var/tmp, build-bench/disk on a disk
#   --no-install  do not call apt-get
#   --rev REV     benchmark the library as committed at REV (git archive into
#                 build-bench-src/), not the work tree with its edits
#   FMALLOC_SRC=DIR  build the library from another source tree
#
# Exit status: 0 when every worker run succeeded.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
src=${FMALLOC_SRC:-$root}
mode=full
runs=
case $src in /*) ;; *) src=$(cd "$src" && pwd) ;; esac
write_docs=0
install=1
disk_dir=${BENCH_DISK_DIR:-}
rev=
driver_args=()

usage() {
    sed -n '2,/^# Exit status/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 2
}

while (($#)); do
    case $1 in
    --smoke) mode=smoke ;;
    --quick) mode=quick ;;
    --runs) runs=${2:?}; shift ;;
    --write-docs) write_docs=1 ;;
    --no-install) install=0 ;;
    --rev) rev=${2:?}; shift ;;
    --dir | --arms | --workloads | --seed) driver_args+=("$1" "${2:?}"); shift ;;
    --disk-dir) disk_dir=${2:?}; shift ;;
    -h | --help) usage ;;
    *) echo "run.sh: unknown option $1" >&2; usage ;;
    esac
    shift
done

say() { printf '== %s\n' "$*" >&2; }

if [ -n "$rev" ]; then
    sha=$(git -C "$root" rev-parse --verify "$rev^{commit}")
    src=$root/build-bench-src/$sha
    if [ ! -f "$src/meson.build" ]; then
        say "extracting $rev ($sha) into $src"
        rm -rf "$root/build-bench-src" && mkdir -p "$src"
        git -C "$root" archive "$sha" | tar -x -C "$src"
    fi
fi

# ---- 1. peers --------------------------------------------------------------
packages=(meson ninja-build pkg-config gcc g++ libxxhash-dev
          libjemalloc-dev libmimalloc-dev libboost-dev libpmemobj-dev gnuplot-nox
          liblmdb-dev libsqlite3-dev)
if ((install)); then
    missing=()
    for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$p")
    done
    if ((${#missing[@]})); then
        say "installing ${missing[*]}"
        sudo=
        [ "$(id -u)" -eq 0 ] || sudo=sudo
        export DEBIAN_FRONTEND=noninteractive
        $sudo apt-get install -y -qq "${missing[@]}" >&2 ||
            { $sudo apt-get update -qq >&2 && $sudo apt-get install -y -qq "${missing[@]}" >&2; }
    fi
fi

# ---- 2. build --------------------------------------------------------------
libbuild=$root/build-bench-lib
benchbuild=$root/build-bench
# A build directory remembers which source tree it was made for.
if [ "$(cat "$libbuild/.fmalloc-src" 2>/dev/null)" != "$src" ]; then
    rm -rf "$libbuild" "$benchbuild"
fi
if [ ! -f "$libbuild/build.ninja" ]; then
    say "configuring the library in $libbuild (release, from $src)"
    meson setup "$libbuild" "$src" --buildtype=release >"$root/build-bench-lib.log" 2>&1 ||
        { cat "$root/build-bench-lib.log" >&2; exit 1; }
    rm -f "$root/build-bench-lib.log"
    echo "$src" >"$libbuild/.fmalloc-src"
fi
say "building the library"
ninja -C "$libbuild" lib/libfmalloc.a >&2
if [ ! -f "$benchbuild/build.ninja" ]; then
    say "configuring the harness in $benchbuild"
    meson setup "$benchbuild" "$root/bench" -Dfmalloc_build="$libbuild" -Dfmalloc_src="$src" >&2
fi
say "building the harness"
ninja -C "$benchbuild" >&2

# ---- 3. run ----------------------------------------------------------------
results=$benchbuild/results
mkdir -p "$results"
# The commit workloads time fdatasync: their files need a disk, not a tmpfs.
is_disk() {
    [ -d "$1" ] && [ -w "$1" ] || return 1
    case $(stat -f -c %T "$1" 2>/dev/null) in tmpfs | ramfs | '') return 1 ;; esac
}
if [ -z "$disk_dir" ]; then
    mkdir -p "$benchbuild/disk"
    for d in "${TMPDIR:-}" /var/tmp "$benchbuild/disk"; do
        if [ -n "$d" ] && is_disk "$d"; then disk_dir=$d; break; fi
    done
fi
[ -n "$disk_dir" ] && [ -d "$disk_dir" ] || { echo "run.sh: no disk directory for the commit workloads (use --disk-dir)" >&2; exit 1; }
disk_dir=$(cd "$disk_dir" && pwd)
disk_fs=$(stat -f -c %T "$disk_dir" 2>/dev/null || echo '?')
is_disk "$disk_dir" || say "WARNING: $disk_dir is $disk_fs, not a disk: commit figures will mean nothing"
say "commit workloads' files in $disk_dir ($disk_fs)"
driver_args+=(--disk-dir "$disk_dir")
case $mode in
smoke) driver_args+=(--smoke) ;;
quick) driver_args+=(--quick) ;;
esac
[ -z "$runs" ] || driver_args+=(--runs "$runs")
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u '+%Y-%m-%d %H:%M UTC')
say "running ($mode): progress on stderr, tables on stdout"
status=0
"$benchbuild/bench_driver" "${driver_args[@]}" --md "$results/results.md" \
    --tsv "$results/results.tsv" || status=$?
case $mode in smoke) entries=10000 crun=1 ;; quick) entries=200000 crun=3 ;; *) entries=1000000 crun=${runs:-5} ;; esac
say "containers in the file: $entries entries, fmalloc against Boost.Interprocess"
cdir=/dev/shm
for ((i = 0; i < ${#driver_args[@]}; i++)); do
    [ "${driver_args[i]}" != --dir ] || cdir=${driver_args[i + 1]}
done
"$benchbuild/bench_containers" --entries "$entries" --runs "$crun" --dir "$cdir" \
    >"$results/containers.md" || status=$?
cat "$results/containers.md"
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

if [ "$mode" = smoke ]; then
    if ((status == 0)); then
        echo "bench smoke: every arm and workload ran"
    else
        echo "bench smoke: some worker runs FAILED (see above)"
    fi
fi
((write_docs)) || exit $status

# ---- 4. docs ---------------------------------------------------------------
say "writing docs/benchmarks.md and docs/benchmarks.png"
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
mem=$(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
arena_dir=/dev/shm
for ((i = 0; i < ${#driver_args[@]}; i++)); do
    [ "${driver_args[i]}" != --dir ] || arena_dir=${driver_args[i + 1]}
done
arena_fs=$(stat -f -c %T "$arena_dir" 2>/dev/null || echo '?')
dirty=
if [ -n "$rev" ]; then
    commit="${sha:0:7} (\`--rev $rev\`)"
else
    commit=$(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo "? (not a git checkout: $src)")
    [ -z "$(git -C "$src" status --porcelain -- lib include meson.build 2>/dev/null)" ] ||
        dirty=" plus uncommitted changes in lib/ or include/"
fi
debug_level=$(meson introspect --buildoptions "$libbuild" 2>/dev/null |
    grep -o '"name": "debug_level", "value": [0-9]*' | grep -o '[0-9]*$' || echo '?')
pkgver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo '?'; }
case $mode in full) nruns=${runs:-5} ;; quick) nruns=${runs:-3} ;; *) nruns=${runs:-1} ;; esac
cmd="bash bench/run.sh"
[ "$mode" = full ] || cmd+=" --$mode"
[ -z "$runs" ] || cmd+=" --runs $runs"
[ -z "$rev" ] || cmd+=" --rev $rev"
cmd+=" --write-docs"

gnuplot -e "data='$results/results.tsv'; out='$root/docs/benchmarks.png'; subtitle='$mode scale, median of $nruns run(s), $(nproc) x $cpu'" \
    "$root/bench/plot.gp"

{
cat <<EOF
# Benchmarks

<!-- Generated by \`$cmd\`; do not edit by hand: run it again. -->

fmalloc side by side with the volatile heaps it aims at (glibc malloc,
jemalloc, mimalloc) and the persistent heaps it means to beat
(Boost.Interprocess \`managed_mapped_file\`, PMDK \`libpmemobj\`), as the
specification's section 7 asks. Numbers are throughputs and ratios from
one run of the harness on the machine below; they are measurements, not
tests, and move by several per cent from one run to the next on a shared
machine (the range columns show how much).

## Machine

| | |
| --- | --- |
| CPU | $cpu, $(nproc) cores (\`nproc\`) |
| memory | $mem |
| kernel | $(uname -sr) |
| compiler | $(gcc --version | head -n 1) |
| arena files | \`$arena_dir\` ($arena_fs) |
| commit workloads' files (7–9) | \`$disk_dir\` ($disk_fs) |
| load average (1, 5, 15 min) | $load_before before, $load_after after |
| started | $started |
| fmalloc | commit $commit$dirty |
| peers (Debian packages) | libjemalloc-dev $(pkgver libjemalloc-dev), libmimalloc-dev $(pkgver libmimalloc-dev), libboost-dev $(pkgver libboost-dev), libpmemobj-dev $(pkgver libpmemobj-dev), liblmdb-dev $(pkgver liblmdb-dev), libsqlite3-dev $(pkgver libsqlite3-dev) |

The machine is shared with other developers' builds: the load average
above says how quiet it was.

## How to run

\`\`\`sh
bash bench/run.sh                # full sizes, medians of 5 runs, Markdown on stdout
bash bench/run.sh --quick        # a fifth of the sizes, 3 runs
bash bench/run.sh --smoke        # every arm and workload at toy sizes (~10 s), as CI does
bash bench/run.sh --runs 9       # more runs
bash bench/run.sh --write-docs   # full run, then rewrite this page and benchmarks.png
bash bench/run.sh --rev HEAD     # the library as committed, not the work tree's edits
bash bench/run.sh --arms fmalloc,glibc --workloads churn,mixed   # a subset
bash bench/run.sh --workloads commit,dirty,between --disk-dir /var/tmp   # issue 16's commits
bash bench/run.sh --workloads medium,medium2,prodcons,bigreuse   # issue 17's shapes
bash bench/run.sh --workloads procs,procs2 --arms fmalloc,boost   # issue 18's processes
\`\`\`

\`run.sh\` installs the peers with apt-get when they are missing, builds
the library in \`build-bench-lib/\` (\`--buildtype=release\`) and the
harness in \`build-bench/\` (its own Meson project, \`bench/meson.build\`),
and runs \`build-bench/bench_driver\`. One case by hand:
\`build-bench/bench_worker --alloc fmalloc --workload churn --seed 42 --file /dev/shm/x.arena\`.

## Method

* **One process per measurement.** The driver executes
  \`bench_worker --alloc NAME --workload W --seed S\` for every
  (run, workload, allocator); the arms take turns within each run, their
  order rotated by one from run to run. Every figure is the median of the
  runs, with the fastest and slowest beside it.
* **The same operations for everyone.** A worker draws its whole operation
  sequence from the seed into harness memory (anonymous mmap, outside the
  heap under test) before the clock starts; within a run every arm gets
  the same seed (one seed per run, listed under Results). The timed loop
  calls the allocator through a small adapter (one indirect call per
  operation, the same for every arm) and writes and checks a stamp in each
  block, so a heap that hands out overlapping or damaged blocks fails the
  run instead of winning it.
* **fmalloc**: linked as an application links it, the static
  \`libfmalloc.a\` built with \`buildtype=release\` and
  \`debug_level=$debug_level\` (the project's default; 1 keeps the cheap
  \`fm_assert\` checks on). Arenas are created with the default initial
  size and grow on demand; opened **without
  \`FM_NOSYNC\`**, so \`fm_close\` runs msync + fdatasync. The list uses
  \`fm_malloc_to\` (allocate and link in one crash-atomic step).
* **glibc, jemalloc, mimalloc**: plain \`malloc\`/\`free\`/\`realloc\`; the
  jemalloc and mimalloc arms run with \`LD_PRELOAD=libjemalloc.so.2\` /
  \`libmimalloc.so.2\` (the worker checks that the preload took).
* **Boost.Interprocess**: \`managed_mapped_file\` with its default segment
  manager (\`rbtree_best_fit\`, process-shared mutex); its file has a fixed
  size chosen from the workload (it cannot grow while open) and is sparse,
  so only touched pages take disk blocks. \`realloc\` = keep if big enough,
  else \`allocation_command(expand_fwd)\`, else allocate + copy + free.
  Closing calls \`flush()\` (msync), to match \`fm_close\`.
* **PMDK libpmemobj**: \`pmemobj_alloc\`/\`pmemobj_free\`/\`pmemobj_realloc\`
  on a pool of a fixed size chosen from the workload, in the same directory
  as the other arenas, run with \`PMEM_IS_PMEM_FORCE=1\` (libpmem flushes
  with cache-line flush instructions instead of msync, as on a DAX file
  system). The list allocates into the previous node's PMEMoid and
  \`pmemobj_persist\`s each node, PMDK's own durability model.
* **Files** live in \`$arena_dir\`; the page cache is warm when the list is
  reopened (the building process has just closed it). On a tmpfs the
  msync/fdatasync at close cost next to nothing; \`--dir\` puts the files
  on a disk file system instead.
* **Commits (workloads 7–9, issue 16)** run on a disk file system
  (\`--disk-dir\`, default \`\$BENCH_DISK_DIR\`, else the first of
  \`\$TMPDIR\`, \`/var/tmp\`, \`build-bench/disk\` that is not a tmpfs),
  since a commit's cost is its fdatasyncs. They compare fmalloc's
  power-safe mode (\`FM_DURABLE\`: a private mapping, \`fm_commit\` appends
  the pages dirtied since the last commit to a checksummed redo journal
  and syncs it, then writes them to the file unsynced; every 64 commits a
  checkpoint syncs the file and restarts the journal) with its default
  mode (\`fm_sync\`: msync + fdatasync, durable but not atomic against a
  power cut), LMDB and SQLite on the same inserts. The issue's targets:
  small-transaction commits per second at least LMDB's on the same disk;
  work between commits at least 0.8× the default mode's; a commit's cost
  that follows the pages dirtied, not the arena's size.
* **Two threads on $(nproc) cores**: workload 5 needs both cores to itself;
  any other load on the machine shows up there first (so do 10 with two
  threads and 11).
* **Issue 17's shapes (workloads 10–12)** are the patterns where a
  standard allocator suite, run outside the project, found fmalloc
  slowest: medium sizes under threads, frees of another thread's blocks,
  large blocks freed and allocated again. Its targets: medium sizes ≥ 0.8×
  glibc with one thread, ≥ 1.0× with two and ≥ 1.6× one thread;
  producer/consumer ≥ 1.0× glibc; every workload ≥ 5× PMDK and ≥ 3× Boost.
  (Large-block reuse ≥ 0.8× glibc is this page's reading of "the punch
  still happens for memory left free" without a refault every time.)
* **Processes on one heap (workload 13, issue 18)**: one process, then
  two at once, churn small blocks on one heap in a file, each process
  having opened it itself: fmalloc with \`FM_SHARED\` (no thread caches in
  that mode), Boost's \`managed_mapped_file\` with \`open_only\`. The
  volatile arms and PMDK cannot share a heap between processes and are
  not run. The issue's targets: two processes ≥ 10× Boost's aggregate
  throughput and ≥ 1.6× one process. As in workload 5, two processes
  need both cores to themselves: other load shows in the CPU share.

EOF
sed 's/^## Results$/## Results/' "$results/results.md"
cat <<EOF
## Containers in the file

A \`boost::container::map<uint64_t, uint64_t>\` (Boost $(pkgver libboost-dev))
built in the file, closed, reopened in a new process and searched, with
fmalloc (\`fm::allocator\`, found by \`fm::find_or_construct\`) and with
Boost.Interprocess (\`managed_mapped_file\`, its \`find_or_construct\`, a
file sized up front). Both sync at close. Each phase runs in its own
process (\`bench/containers.cpp\`); keys come from a seeded xorshift.

EOF
cat "$results/containers.md"
cat <<EOF

## Chart

![Median throughput per allocator and workload, log scale](benchmarks.png)

\`docs/benchmarks.png\`: median million operations per second per
allocator for workloads 1, 2, 3 (build), 4, 5, 10 (both) and 11, on a log scale. The data
is \`build-bench/results/results.tsv\` after a run; \`bench/plot.gp\` draws it.
EOF
} >"$root/docs/benchmarks.md"
say "wrote docs/benchmarks.md and docs/benchmarks.png"
exit $status
