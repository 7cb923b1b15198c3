# lib.sh -- shared by the packaging tests: a work directory, checks that
# record and go on, and the closing verdict.
#
#   check NAME CMD...   run CMD (output to $work/NAME.log); "ok"/"FAIL"
#   grepq ARGS...       grep -q safe at the end of a pipeline
#   finish              exit 1 if any check failed, else 0
set -uo pipefail

work=$(mktemp -d "${TMPDIR:-/tmp}/fm-packaging.XXXXXX")
[ -n "${FM_KEEP_WORK:-}" ] || trap 'rm -rf "$work"' EXIT
failures=0

check() {
    local name=$1
    shift
    if "$@" >"$work/$name.log" 2>&1; then
        echo "ok   - $name"
    else
        echo "FAIL - $name: $*"
        sed 's/^/       | /' "$work/$name.log" | tail -n 40
        failures=$((failures + 1))
    fi
}

# grepq ARGS...: grep -q that reads all its input.  With pipefail, grep -q
# leaving early would kill the writer with SIGPIPE and fail the pipeline.
grepq() {
    grep "$@" >/dev/null
}

# must_fail CMD...: succeed when CMD fails
must_fail() {
    ! "$@"
}

finish() {
    echo "$failures check(s) failed"
    [ "$failures" -eq 0 ]
}

# setup_or_die LOGNAME meson setup args...: configuration is not a check:
# without it nothing else can run.
setup_or_die() {
    local name=$1
    shift
    if ! "$@" >"$work/$name.log" 2>&1; then
        echo "FAIL - $name: $*"
        tail -n 40 "$work/$name.log"
        exit 1
    fi
}
