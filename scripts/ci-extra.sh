#!/usr/bin/env bash
# ci-extra.sh -- the sanitizer, Valgrind, ThreadSanitizer, fuzzing, long
# power-loss and debug-level legs of CI.
#
#   scripts/ci-extra.sh            all seven steps
#   CI_EXTRA_STEPS="asan fuzz" scripts/ci-extra.sh
#   CI_EXTRA_STEPS=prebuild scripts/ci-extra.sh
#                                  only configure and build every leg's tree
#                                  (run.sh runs this at low priority while
#                                  the plain suites run; the steps then
#                                  find their trees built)
#
# Each step builds in its own directory at the repository root:
#
#   asan      build-asan  ASan + UBSan (gcc); every suite but 'stress', with
#                         crash_stress at ASAN_CRASH_ROUNDS rounds (CI: 200,
#                         each mode; the plain build runs 1,000) and the
#                         power simulator at ASAN_POWER_IMAGES images per
#                         scenario (CI: 400; the power step runs 4,000)
#   valgrind  build       the plain build; suites 'unit' and 'api' under memcheck,
#                         test_random at VALGRIND_RANDOM_OPS operations (CI:
#                         200,000: a periodic fm_check and the reopen at
#                         another address included; its own default,
#                         1,000,000, runs in every other build) and
#                         test_heap's threads at VALGRIND_THREAD_OPS each
#                         (CI: 50,000; default 200,000): memcheck runs
#                         threads one at a time, 20-50 times slower
#   tsan      build-tsan  ThreadSanitizer (gcc); the tests that start threads
#                         (only their executables are built)
#   fuzz      build-fuzz  clang, -Dfuzzing=true, ASan + UBSan: replays the corpora
#                         (suite 'fuzz'), then runs every fuzzer for FUZZ_SECONDS
#                         on a copy of its corpus (less the known findings,
#                         finding-*, which the replay covers); a crash, leak, timeout or
#                         sanitizer report fails the step and keeps the input in
#                         build-fuzz/fuzz-artifacts/
#   power     build       the power-loss simulator (suite 'power') with
#                         FM_POWER_IMAGES images per scenario (CI: 2,000,
#                         24,000 in all: 10,000 over five default-mode
#                         scenarios, 14,000 over seven durable ones; run.sh
#                         leaves the suite to this step).  Runs beside the valgrind
#                         step when both are asked for (CI_EXTRA_BESIDE)
#   debug3    build-debug3  -Ddebug_level=3 (poisoned frees, a full heap check
#                         before every commit): suites 'unit' and 'api' but
#                         for 'heap' and 'random' (too many operations); only
#                         their executables are built
#   realimg   build       scripts/power-real.sh: power cuts on real ext4 images
#                         (loop device, reflink clones), POWER_REAL_IMAGES per
#                         mode; skipped where root or loop devices are missing
#
# Needs meson, ninja, gcc, clang with its libFuzzer/sanitizer runtimes
# (Debian: clang libclang-rt-14-dev), valgrind and libxxhash-dev.
#
# Environment:
#   FUZZ_SECONDS      seconds each fuzzer runs (default 60)
#   FUZZ_PARALLEL     1 (default): the fuzzers run side by side, one per core
#   TSAN_STRESS_OPS   --ops for mem_stress_threads under TSan (default 300000;
#                     the test's own default, 1000000, takes ~80 s there)
#   FM_POWER_IMAGES   crash images per scenario in the power step (default
#                     2000: 24,000 in all, about 70 s on 2 cores)
#   POWER_REAL_IMAGES clones per mode in the realimg step (default 30: ~40 s)
#   ASAN_CRASH_ROUNDS crash_stress rounds in the ASan build (default 200)
#   VALGRIND_RANDOM_OPS, VALGRIND_THREAD_OPS  see valgrind above
#   ASAN_POWER_IMAGES power images per scenario in the ASan build (default 400)
#   CI_EXTRA_STEPS    which steps to run (default "asan valgrind tsan debug3 fuzz power realimg")
#   CI_EXTRA_BESIDE   1 (default): the power step (one process, nothing
#                     timing-sensitive) runs beside the valgrind step (two
#                     processes under memcheck, timeouts x10) instead of
#                     after it, so neither leaves a core idle; its output
#                     follows valgrind's
#
# Every step prints a header and its time.  The last line is
# "N passed, N failed, N skipped": the meson tests of all steps (the fuzzing
# runs are not meson tests: they print their own lines, and a finding makes
# the exit status non-zero).  The exit status is
# non-zero if any test failed, any build failed or any fuzzer found something.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_PARALLEL=${FUZZ_PARALLEL:-1}
TSAN_STRESS_OPS=${TSAN_STRESS_OPS:-300000}
FM_POWER_IMAGES=${FM_POWER_IMAGES:-2000}
ASAN_CRASH_ROUNDS=${ASAN_CRASH_ROUNDS:-200}
ASAN_POWER_IMAGES=${ASAN_POWER_IMAGES:-400}
VALGRIND_RANDOM_OPS=${VALGRIND_RANDOM_OPS:-200000}
VALGRIND_THREAD_OPS=${VALGRIND_THREAD_OPS:-50000}
CI_EXTRA_STEPS=${CI_EXTRA_STEPS:-asan valgrind tsan debug3 fuzz power realimg}
CI_EXTRA_BESIDE=${CI_EXTRA_BESIDE:-1}

# The tests of the tsan and debug3 legs (mem_stress_threads, with its own
# --ops, is added to tsan's).  debug3 leaves out 'heap' and 'random': a heap
# check after each of their hundreds of thousands of operations takes many
# minutes; the rest, ~25 s.
TSAN_TESTS=(heap tcache compat_threads misuse shared)
DEBUG3_TESTS=(invariants tcache format_doc layers static_names api_names api_names_catch
    open lock create_race misuse punch regress version names)

export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:abort_on_error=1:detect_leaks=1:print_summary=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1:print_summary=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}

total_passed=0
total_failed=0
total_skipped=0
status=0
summary=()

header() {
    echo
    echo "=================================================================="
    echo "==> $*"
    echo "=================================================================="
}

note_failure() {
    echo "ci-extra: FAILED: $*" >&2
    summary+=("FAILED: $*")
    status=1
}

# setup DIR [meson setup options...]: configure DIR, or reconfigure it.
# A directory this script configured with the same options (and $CC), or a
# plain one when no options are asked for, is left as it is: ninja re-runs
# meson itself when a meson.build changed, and a needless --reconfigure
# costs seconds per leg (the prebuild step and the step itself both call
# this).
setup() {
    local dir=$1
    shift
    local want="CC=${CC:-} $*"
    if [ -f "$dir/build.ninja" ]; then
        if { [ -f "$dir/ci-setup-args" ] && [ "$(cat "$dir/ci-setup-args")" = "$want" ]; } ||
            { [ ! -f "$dir/ci-setup-args" ] && [ $# -eq 0 ]; }; then
            return 0
        fi
        meson setup --reconfigure "$dir" "$@" >"$dir.setup.log" 2>&1 ||
            { cat "$dir.setup.log"; return 1; }
    else
        rm -rf "$dir"
        meson setup "$dir" "$@" >"$dir.setup.log" 2>&1 ||
            { cat "$dir.setup.log"; return 1; }
    fi
    rm -f "$dir.setup.log"
    printf '%s' "$want" >"$dir/ci-setup-args"
}

# build_tests DIR NAME...: build only what the tests NAME need (their
# executables and the targets they name as dependencies), not the whole
# tree: the TSan and debug3 legs run a few tests of a build that also has
# fmtool, the examples and the C++ tests.
build_tests() {
    local dir=$1 targets
    shift
    targets=$(python3 - "$dir" "$@" <<'PY'
import json, os, sys
d, names = sys.argv[1], set(sys.argv[2:])
info = os.path.join(d, "meson-info")
tests = json.load(open(os.path.join(info, "intro-tests.json")))
ids = {t["id"]: t for t in json.load(open(os.path.join(info, "intro-targets.json")))}
out = set()
for t in tests:
    if t["name"] in names:
        for dep in t["depends"]:
            if dep in ids:
                out.update(os.path.relpath(f, d) for f in ids[dep]["filename"])
print("\n".join(sorted(out)))
PY
) || return 1
    if [ -z "$targets" ]; then
        echo "ci-extra: no targets found for: $*" >&2
        return 1
    fi
    # shellcheck disable=SC2086 # one target a line, no spaces in them
    ninja -C "$dir" $targets
}

# mtest LABEL [meson test options...]: run meson test, add its counts to
# the totals (parsed from its closing summary).
mtest() {
    local label=$1
    shift
    local log rc=0 passed failed skipped
    log=$(mktemp)
    # Each run its own log (meson-logs/LABEL.json): the closing totals
    # (scripts/test_totals.py) read every one of them.
    meson test --print-errorlogs --logbase "$label" "$@" 2>&1 | tee "$log" || rc=$?
    passed=$(awk '/^Ok:/ {p += $2} /^Expected Fail:/ {p += $3} END {print p + 0}' "$log")
    failed=$(awk '/^Fail:/ {f += $2} /^Unexpected Pass:/ {f += $3} /^Timeout:/ {f += $2}
                  END {print f + 0}' "$log")
    skipped=$(awk '/^Skipped:/ {s += $2} END {print s + 0}' "$log")
    if grep -q '^No suitable tests defined' "$log"; then
        note_failure "$label: no tests matched"
    elif [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
        failed=1 # meson itself failed (a build error, say)
    fi
    rm -f "$log"
    total_passed=$((total_passed + passed))
    total_failed=$((total_failed + failed))
    total_skipped=$((total_skipped + skipped))
    summary+=("$label: $passed passed, $failed failed, $skipped skipped")
    if [ "$failed" -ne 0 ]; then
        note_failure "$label: $failed test(s) failed"
    fi
}

# existing_tests DIR NAME...: the NAMEs that DIR's meson test knows.
existing_tests() {
    local dir=$1 list name
    shift
    list=$(meson test -C "$dir" --no-rebuild --list 2>/dev/null | sed 's/.* \/ //')
    for name in "$@"; do
        if grep -qx -- "$name" <<<"$list"; then
            echo "$name"
        else
            echo "ci-extra: warning: no test named '$name' in $dir" >&2
        fi
    done
}

# ---- how each leg's tree is configured and built ------------------------------
# prepare_LEG: configure and build what the step LEG runs; the prebuild step
# calls them all (run.sh starts it at low priority while the plain suites
# run), the steps call them again (then a no-op).
prepare_asan() {
    setup build-asan -Db_sanitize=address,undefined -Db_lundef=false \
        -Dcrash_rounds="$ASAN_CRASH_ROUNDS" || { prep_what="asan: meson setup"; return 1; }
    ninja -C build-asan || { prep_what="asan: build"; return 1; }
}

prepare_plain() {
    setup build || { prep_what="meson setup (build)"; return 1; }
    ninja -C build || { prep_what="build (build)"; return 1; }
}

prepare_tsan() {
    setup build-tsan -Db_sanitize=thread -Db_lundef=false || { prep_what="tsan: meson setup"; return 1; }
    build_tests build-tsan "${TSAN_TESTS[@]}" mem_stress_threads || { prep_what="tsan: build"; return 1; }
}

prepare_fuzz() {
    if [ -f build-fuzz/meson-info/intro-compilers.json ] &&
        ! grep -q '"id": "clang"' build-fuzz/meson-info/intro-compilers.json; then
        rm -rf build-fuzz # configured with another compiler
    fi
    CC=clang CXX=clang++ setup build-fuzz -Dfuzzing=true \
        -Db_sanitize=address,undefined -Db_lundef=false || { prep_what="fuzz: meson setup"; return 1; }
    if ! grep -q "fuzz_open" build-fuzz/build.ninja; then
        prep_what="fuzz: no fuzz targets (is subdir('fuzz') in test/meson.build?)"
        return 1
    fi
    ninja -C build-fuzz test/fuzz/fuzz_open test/fuzz/fuzz_ops || { prep_what="fuzz: build"; return 1; }
}

prepare_debug3() {
    setup build-debug3 -Ddebug_level=3 || { prep_what="debug3: meson setup"; return 1; }
    build_tests build-debug3 "${DEBUG3_TESTS[@]}" || { prep_what="debug3: build"; return 1; }
}

# prepare LEG: prepare_LEG, a failure noted with what failed.
prep_what=
# A leg named in CI_EXTRA_PREPARED was prepared by the caller: a step
# running beside another in the same tree must not start a second ninja in
# it.
prepare() {
    prep_what=
    [[ " ${CI_EXTRA_PREPARED:-} " == *" $1 "* ]] && return 0
    "prepare_$1" && return 0
    note_failure "${prep_what:-$1: build}"
    return 1
}

step_prebuild() {
    header "[prebuild] configure and build every leg's tree (no tests)"
    local leg start
    for leg in asan tsan fuzz debug3; do
        start=$SECONDS
        if "prepare_$leg"; then
            echo "==> [prebuild] $leg: built in $((SECONDS - start)) s"
        else
            echo "==> [prebuild] $leg: FAILED ($prep_what) after $((SECONDS - start)) s; its step retries and reports"
        fi
    done
}

# ---- (a) ASan + UBSan --------------------------------------------------------
step_asan() {
    header "[asan] ASan + UBSan build (build-asan): every suite but 'stress'"
    prepare asan || return
    # crash_stress: ASAN_CRASH_ROUNDS rounds each (a meson option of this
    # tree); power: ASAN_POWER_IMAGES images per scenario.  The plain build
    # runs both at full size.
    FM_POWER_IMAGES=$ASAN_POWER_IMAGES \
        mtest asan -C build-asan --no-rebuild --no-suite stress --timeout-multiplier 3
}

# ---- (b) Valgrind memcheck on the plain build ------------------------------------
step_valgrind() {
    header "[valgrind] memcheck on the plain build (build): suites 'unit' and 'api'"
    prepare plain || return
    local suites=() s list
    for s in unit api; do
        list=$(meson test -C build --no-rebuild --list --suite "$s" 2>/dev/null || true)
        if grep -q " / " <<<"$list"; then
            suites+=(--suite "$s")
        else
            echo "ci-extra: warning: no suite '$s' in build" >&2
        fi
    done
    if [ ${#suites[@]} -eq 0 ]; then
        note_failure "valgrind: neither suite exists"
        return
    fi
    FM_TEST_OPS=$VALGRIND_RANDOM_OPS FM_TEST_THREAD_OPS=$VALGRIND_THREAD_OPS \
        mtest valgrind -C build --no-rebuild "${suites[@]}" --timeout-multiplier 10 \
        --wrap='valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite'
}

# ---- (c) ThreadSanitizer --------------------------------------------------------
step_tsan() {
    header "[tsan] ThreadSanitizer build (build-tsan): the threaded tests"
    prepare tsan || return
    local tests
    mapfile -t tests < <(existing_tests build-tsan "${TSAN_TESTS[@]}")
    if [ ${#tests[@]} -gt 0 ]; then
        mtest tsan -C build-tsan --no-rebuild --timeout-multiplier 5 "${tests[@]}"
    fi
    mapfile -t tests < <(existing_tests build-tsan mem_stress_threads)
    if [ ${#tests[@]} -gt 0 ]; then
        mtest tsan-stress -C build-tsan --no-rebuild --timeout-multiplier 5 \
            --test-args="--ops=$TSAN_STRESS_OPS" "${tests[@]}"
    fi
}

# ---- (d) libFuzzer -----------------------------------------------------------
# fuzz_one NAME CORPUS WORKDIR: run one fuzzer (in the background caller's way).
fuzz_one() {
    local name=$1 corpus=$2 work=$3
    mkdir -p "$work/corpus" "$work/artifacts"
    cp -r "$corpus"/. "$work/corpus/"
    # Known findings replay in the meson test above (and fail it until the
    # library is fixed); here they would stop the fuzzer before it starts.
    rm -f "$work/corpus"/finding-*
    local rc=0
    "build-fuzz/test/fuzz/$name" -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 \
        -timeout=30 -rss_limit_mb=3072 -artifact_prefix="$work/artifacts/" \
        "$work/corpus" >"$work/log" 2>&1 || rc=$?
    echo "$rc" >"$work/rc"
}

step_fuzz() {
    header "[fuzz] clang + libFuzzer + ASan/UBSan (build-fuzz): corpus replay, then ${FUZZ_SECONDS}s per fuzzer"
    prepare fuzz || return
    mtest fuzz-replay -C build-fuzz --no-rebuild --suite fuzz

    local root names=(fuzz_open fuzz_ops) name pids=()
    root=$(mktemp -d "${TMPDIR:-/tmp}/ci-fuzz.XXXXXX")
    for name in "${names[@]}"; do
        if [ "$FUZZ_PARALLEL" = 1 ]; then
            fuzz_one "$name" "test/fuzz/corpus_${name#fuzz_}" "$root/$name" &
            pids+=($!)
        else
            fuzz_one "$name" "test/fuzz/corpus_${name#fuzz_}" "$root/$name"
        fi
    done
    for pid in "${pids[@]}"; do
        wait "$pid" || true
    done
    local rc done_line found
    for name in "${names[@]}"; do
        rc=$(cat "$root/$name/rc")
        # The closing "#N DONE cov: X ft: Y ..." line; after a finding, the
        # last status line before it.
        done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$root/$name/log" | tail -n 1 || true)
        if [ -z "$done_line" ]; then
            done_line=$(grep -E '^#[0-9]+[[:space:]]' "$root/$name/log" | tail -n 1 || true)
        fi
        echo "--- $name (${FUZZ_SECONDS}s): exit $rc"
        echo "    ${done_line:-no status line}"
        grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' \
            "$root/$name/log" | sed 's/^/    /' || true
        found=$(find "$root/$name/artifacts" -type f | head -n 5)
        if [ "$rc" -ne 0 ] || [ -n "$found" ]; then
            echo "    finding(s): ${found:-none saved}"
            tail -n 80 "$root/$name/log" | sed 's/^/    | /'
            mkdir -p build-fuzz/fuzz-artifacts
            if [ -n "$found" ]; then
                cp "$root/$name/artifacts"/* build-fuzz/fuzz-artifacts/
            fi
            cp "$root/$name/log" "build-fuzz/fuzz-artifacts/$name.log"
            note_failure "fuzz: $name found something (inputs and log in build-fuzz/fuzz-artifacts/)"
            summary+=("fuzz $name: FAILED, ${done_line//$'\t'/ }")
        else
            summary+=("fuzz $name: ok, ${done_line//$'\t'/ }")
        fi
    done
    rm -rf "$root"
}

# ---- (e) the power-loss simulator, long ----------------------------------------
step_power() {
    header "[power] power-loss images (build): $FM_POWER_IMAGES per scenario"
    prepare plain || return
    # The test's timeout (300 s) is for its default, 2,000 per scenario.
    FM_POWER_IMAGES=$FM_POWER_IMAGES mtest power -C build --no-rebuild --suite power \
        --timeout-multiplier $(((FM_POWER_IMAGES + 999) / 1000))
}

# ---- (f) debug level 3 -------------------------------------------------------
step_debug3() {
    header "[debug3] debug_level=3 build (build-debug3): suites 'unit' and 'api' less heap, random"
    prepare debug3 || return
    local tests
    mapfile -t tests < <(existing_tests build-debug3 "${DEBUG3_TESTS[@]}")
    mtest debug3 -C build-debug3 --no-rebuild --timeout-multiplier 3 "${tests[@]}"
}

# ---- (g) real power-loss images -------------------------------------------------
step_realimg() {
    header "[realimg] power cuts on real ext4 images (build): ${POWER_REAL_IMAGES:-30} per mode"
    prepare plain || return
    ninja -C build test/realimg/power_real || { note_failure "realimg: build"; return; }
    local rc=0 out
    out=$(mktemp)
    scripts/power-real.sh build 2>&1 | tee "$out" || rc=$?
    case $rc in
    0) summary+=("realimg: $(tail -n 1 "$out")") ;;
    77) summary+=("realimg: $(grep -m1 'skipped' "$out")") ;;
    *) note_failure "realimg: $(tail -n 1 "$out")" ;;
    esac
    rm -f "$out"
}

# ---- a step beside another ---------------------------------------------------
# beside_start STEP: run STEP in a child ci-extra.sh (its output to a file);
# beside_end prints that output and adds the child's counts and verdict.
beside_pid=
beside_step=
beside_start() {
    beside_step=$1
    prepare plain || return 1 # both steps use build/: one ninja, here
    export CI_EXTRA_PREPARED="${CI_EXTRA_PREPARED:-} plain"
    echo "==> [$beside_step] starts beside the next step; its output follows that step's"
    beside_t0=$SECONDS
    CI_EXTRA_STEPS=$beside_step CI_EXTRA_BESIDE=0 bash "${BASH_SOURCE[0]}" \
        >"build/ci-extra-$beside_step.log" 2>&1 &
    beside_pid=$!
}

beside_end() {
    [ -n "$beside_pid" ] || return 0
    local rc=0 last
    wait "$beside_pid" || rc=$?
    beside_pid=
    cat "build/ci-extra-$beside_step.log"
    last=$(tail -n 1 "build/ci-extra-$beside_step.log")
    if [[ $last =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed,\ ([0-9]+)\ skipped$ ]]; then
        total_passed=$((total_passed + BASH_REMATCH[1]))
        total_failed=$((total_failed + BASH_REMATCH[2]))
        total_skipped=$((total_skipped + BASH_REMATCH[3]))
        summary+=("$beside_step (beside): $last")
    else
        total_failed=$((total_failed + 1))
    fi
    [ "$rc" -eq 0 ] || note_failure "$beside_step: see its output above"
    summary+=("step $beside_step: $((SECONDS - beside_t0)) s, beside other steps")
}

# ---- main -------------------------------------------------------------------
beside_wanted=
if [ "$CI_EXTRA_BESIDE" = 1 ] && [[ " $CI_EXTRA_STEPS " == *" power "* ]] &&
    [[ " $CI_EXTRA_STEPS " == *" valgrind "* ]]; then
    beside_wanted=power
fi
for step in $CI_EXTRA_STEPS; do
    if [ "$step" = "$beside_wanted" ]; then
        continue # started beside valgrind
    fi
    if [ "$step" = valgrind ] && [ -n "$beside_wanted" ]; then
        beside_start "$beside_wanted" || beside_wanted= # (noted) run it in turn
    fi
    if [ "$step" = fuzz ]; then
        beside_end # the fuzzers run for a fixed time: give them both cores
    fi
    start=$SECONDS
    case $step in
    prebuild) step_prebuild ;;
    asan) step_asan ;;
    valgrind) step_valgrind ;;
    tsan) step_tsan ;;
    fuzz) step_fuzz ;;
    power) step_power ;;
    debug3) step_debug3 ;;
    realimg) step_realimg ;;
    *)
        note_failure "unknown step '$step'"
        continue
        ;;
    esac
    echo "==> [$step] done in $((SECONDS - start)) s"
    summary+=("step $step: $((SECONDS - start)) s")
done
beside_end

header "summary"
printf '%s\n' "${summary[@]}"
echo "$total_passed passed, $total_failed failed, $total_skipped skipped"
exit $status
