# script_lib.sh -- sourced by the example test scripts: a temporary
# directory $dir (removed at exit), fail MESSAGE, and finish NAME, which
# ends the script with the count of failures.
set -u
dir=$(mktemp -d "${TMPDIR:-/tmp}/fmex.XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
finish() {
    if [ $failures -ne 0 ]; then
        echo "$failures failures" >&2
        exit 1
    fi
    echo "$1: ok"
    exit 0
}
