# lib.sh -- sourced by the example scripts (list, list_cpp, kv, wordcount, cross_compiler):
# a temporary directory $dir, removed at exit; fail (count and go on);
# expect_output; finish, which sets the exit status.
set -u
dir=$(mktemp -d "${TMPDIR:-/tmp}/fmex.XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
failures=0

fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# expect_output WHAT EXPECTED ACTUAL
expect_output() {
    if [ "$2" != "$3" ]; then
        fail "$1"
        diff <(printf '%s\n' "$2") <(printf '%s\n' "$3") >&2
    fi
}

# finish NAME: the verdict, as the last line and the exit status.
finish() {
    if [ $failures -ne 0 ]; then
        echo "$failures failures" >&2
        exit 1
    fi
    echo "$1: ok"
}
