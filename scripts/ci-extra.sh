#!/usr/bin/env bash
# ci-extra.sh -- the sanitizer, Valgrind, ThreadSanitizer, fuzzing, long
# power-loss and debug-level legs of CI.
#
#   scripts/ci-extra.sh            all seven steps
#   CI_EXTRA_STEPS="asan fuzz" scripts/ci-extra.sh
#
# Each step builds in its own directory at the repository root:
#
#   asan      build-asan  ASan + UBSan (gcc); every suite but 'stress'
#   valgrind  build       the plain build; suites 'unit' and 'api' under memcheck
#   tsan      build-tsan  ThreadSanitizer (gcc); the tests that start threads
#   fuzz      build-fuzz  clang, -Dfuzzing=true, ASan + UBSan: replays the corpora
#                         (suite 'fuzz'), then runs every fuzzer for FUZZ_SECONDS
#                         on a copy of its corpus (less the known findings,
#                         finding-*, which the replay covers); a crash, leak, timeout or
#                         sanitizer report fails the step and keeps the input in
#                         build-fuzz/fuzz-artifacts/
#   power     build       the power-loss simulator (suite 'power') with
#                         FM_POWER_IMAGES images per scenario (CI: 2,000)
#   debug3    build-debug3  -Ddebug_level=3 (poisoned frees, a full heap check
#                         before every commit): suites 'unit' and 'api' but
#                         for 'heap' and 'random' (too many operations)
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
#                     20000: 100,000 in all, ~6 minutes on 2 cores)
#   POWER_REAL_IMAGES clones per mode in the realimg step (default 30: ~40 s)
#   CI_EXTRA_STEPS    which steps to run (default "asan valgrind tsan fuzz power debug3 realimg")
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
FM_POWER_IMAGES=${FM_POWER_IMAGES:-20000}
CI_EXTRA_STEPS=${CI_EXTRA_STEPS:-asan valgrind tsan fuzz power debug3 realimg}

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
setup() {
    local dir=$1
    shift
    if [ -f "$dir/build.ninja" ]; then
        meson setup --reconfigure "$dir" "$@" >"$dir.setup.log" 2>&1 ||
            { cat "$dir.setup.log"; return 1; }
    else
        rm -rf "$dir"
        meson setup "$dir" "$@" >"$dir.setup.log" 2>&1 ||
            { cat "$dir.setup.log"; return 1; }
    fi
    rm -f "$dir.setup.log"
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

# ---- (a) ASan + UBSan --------------------------------------------------------
step_asan() {
    header "[asan] ASan + UBSan build (build-asan): every suite but 'stress'"
    setup build-asan -Db_sanitize=address,undefined -Db_lundef=false || {
        note_failure "asan: meson setup"
        return
    }
    ninja -C build-asan || { note_failure "asan: build"; return; }
    mtest asan -C build-asan --no-rebuild --no-suite stress --timeout-multiplier 3
}

# ---- (b) Valgrind memcheck on the plain build ------------------------------------
step_valgrind() {
    header "[valgrind] memcheck on the plain build (build): suites 'unit' and 'api'"
    setup build || { note_failure "valgrind: meson setup"; return; }
    ninja -C build || { note_failure "valgrind: build"; return; }
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
    mtest valgrind -C build --no-rebuild "${suites[@]}" --timeout-multiplier 10 \
        --wrap='valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite'
}

# ---- (c) ThreadSanitizer --------------------------------------------------------
step_tsan() {
    header "[tsan] ThreadSanitizer build (build-tsan): the threaded tests"
    setup build-tsan -Db_sanitize=thread -Db_lundef=false || {
        note_failure "tsan: meson setup"
        return
    }
    ninja -C build-tsan || { note_failure "tsan: build"; return; }
    local tests
    mapfile -t tests < <(existing_tests build-tsan heap tcache compat_threads misuse)
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
    if [ -f build-fuzz/meson-info/intro-compilers.json ] &&
        ! grep -q '"id": "clang"' build-fuzz/meson-info/intro-compilers.json; then
        rm -rf build-fuzz # configured with another compiler
    fi
    CC=clang CXX=clang++ setup build-fuzz -Dfuzzing=true \
        -Db_sanitize=address,undefined -Db_lundef=false || {
        note_failure "fuzz: meson setup"
        return
    }
    if ! grep -q "fuzz_open" build-fuzz/build.ninja; then
        note_failure "fuzz: no fuzz targets (is subdir('fuzz') in test/meson.build?)"
        return
    fi
    ninja -C build-fuzz test/fuzz/fuzz_open test/fuzz/fuzz_ops || {
        note_failure "fuzz: build"
        return
    }
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
    setup build || { note_failure "power: meson setup"; return; }
    ninja -C build || { note_failure "power: build"; return; }
    # The test's timeout (300 s) is for CI's 2,000 per scenario.
    FM_POWER_IMAGES=$FM_POWER_IMAGES mtest power -C build --no-rebuild --suite power \
        --timeout-multiplier $(((FM_POWER_IMAGES + 1999) / 2000))
}

# ---- (f) debug level 3 -------------------------------------------------------
step_debug3() {
    header "[debug3] debug_level=3 build (build-debug3): suites 'unit' and 'api' less heap, random"
    setup build-debug3 -Ddebug_level=3 || { note_failure "debug3: meson setup"; return; }
    ninja -C build-debug3 || { note_failure "debug3: build"; return; }
    # 'heap' and 'random' are left out: a heap check after each of their
    # hundreds of thousands of operations takes many minutes; the rest, ~25 s.
    mapfile -t tests < <(existing_tests build-debug3 invariants tcache format_doc layers \
        static_names api_names api_names_catch open lock create_race misuse punch regress \
        version names)
    mtest debug3 -C build-debug3 --no-rebuild --timeout-multiplier 3 "${tests[@]}"
}

# ---- (g) real power-loss images -------------------------------------------------
step_realimg() {
    header "[realimg] power cuts on real ext4 images (build): ${POWER_REAL_IMAGES:-30} per mode"
    setup build || { note_failure "realimg: meson setup"; return; }
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

# ---- main -------------------------------------------------------------------
for step in $CI_EXTRA_STEPS; do
    start=$SECONDS
    case $step in
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

header "summary"
printf '%s\n' "${summary[@]}"
echo "$total_passed passed, $total_failed failed, $total_skipped skipped"
exit $status
