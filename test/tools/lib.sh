# lib.sh -- shared by the fmtool test scripts: sourced with the scripts'
# arguments (FMTOOL MAKE_ARENA).  Each script gets its own temporary
# directory, runs commands with `run`, and ends with `finish`.
set -u
if [ $# -lt 2 ]; then
    echo "usage: $0 FMTOOL MAKE_ARENA" >&2
    exit 2
fi
# Absolute paths: some tests run commands from another directory.
case $1 in /*) fmtool=$1 ;; *) fmtool=$PWD/$1 ;; esac
case $2 in /*) mk=$2 ;; *) mk=$PWD/$2 ;; esac
dir=$(mktemp -d "${TMPDIR:-/tmp}/fmtool-test.XXXXXX") || exit 1
cleanup() {
    [ -n "${holder_ready:-}" ] && rm -f "$holder_ready"
    [ -n "${holder_pid:-}" ] && wait "$holder_pid" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT
failures=0
checks=0
have_python=false
python3 -c 'import json, xml.etree.ElementTree' 2>/dev/null && have_python=true

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# run CMD ARGS...: runs it; sets rc, out (stdout) and err (stderr).
run() {
    "$@" >"$dir/.out" 2>"$dir/.err"
    rc=$?
    out=$(cat "$dir/.out")
    err=$(cat "$dir/.err")
    last="$*"
}

# expect_rc N: the last run exited N.
expect_rc() {
    checks=$((checks + 1))
    [ "$rc" = "$1" ] || fail "'$last' exited $rc, want $1 (stderr: $err)"
}
# expect_out / expect_err PATTERN (grep -E)
expect_out() {
    checks=$((checks + 1))
    grep -Eq -- "$1" <<<"$out" || fail "'$last': stdout lacks /$1/: $out"
}
expect_no_out() {
    checks=$((checks + 1))
    grep -Eq -- "$1" <<<"$out" && fail "'$last': stdout has /$1/: $out"
}
expect_err() {
    checks=$((checks + 1))
    grep -Eq -- "$1" <<<"$err" || fail "'$last': stderr lacks /$1/: $err"
}
# The error is one line on stderr, starting "fmtool: ".
expect_one_error_line() {
    checks=$((checks + 1))
    local n
    n=$(printf '%s\n' "$err" | grep -c .)
    [ "$n" = 1 ] && [ "${err#fmtool: }" != "$err" ] ||
        fail "'$last': want one 'fmtool: ...' line on stderr, got: $err"
}

# expect_json: stdout of the last run is one valid JSON object.
expect_json() {
    checks=$((checks + 1))
    if $have_python; then
        python3 -c 'import json, sys
v = json.load(sys.stdin)
sys.exit(0 if isinstance(v, dict) else 1)' <<<"$out" || fail "'$last': not a JSON object: $out"
    else # rough: braces balance, starts with { and ends with }
        local o c
        o=$(tr -cd '{' <<<"$out" | wc -c)
        c=$(tr -cd '}' <<<"$out" | wc -c)
        [ "${out:0:1}" = "{" ] && [ "${out: -1}" = "}" ] && [ "$o" = "$c" ] ||
            fail "'$last': not a JSON object: $out"
    fi
}
# json_get KEY: a top-level number, string or literal from $out.
json_get() {
    sed -n "s/^  \"$1\": \"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}\$/\1/p" <<<"$out"
}

# expect_xml FILE: parses as XML.
expect_xml() {
    checks=$((checks + 1))
    if $have_python; then
        python3 -c 'import sys, xml.etree.ElementTree as ET; ET.parse(sys.argv[1])' "$1" ||
            fail "$1 does not parse as XML"
    elif command -v xmllint >/dev/null; then
        xmllint --noout "$1" || fail "$1 does not parse as XML"
    else
        grep -q '</svg>' "$1" || fail "$1 is not a complete SVG"
    fi
}

# same_file A B: byte-identical.
expect_same_file() {
    checks=$((checks + 1))
    cmp -s "$1" "$2" || fail "$3: $1 changed"
}

# hold_arena FILE: open FILE read-write in the background until release.
hold_arena() {
    holder_ready=$dir/.held
    rm -f "$holder_ready"
    "$mk" hold "$1" "$holder_ready" &
    holder_pid=$!
    for _ in $(seq 500); do
        [ -e "$holder_ready" ] && return 0
        sleep 0.01
    done
    fail "the lock holder did not start"
}
release_arena() {
    rm -f "$holder_ready"
    wait "$holder_pid" || fail "the lock holder failed"
    holder_pid=
    holder_ready=
}

# make_dirty HOW PATH SEED: an arena of 300 blocks whose writer ended
# without closing it -- HOW exit: _exit; kill: SIGKILL mid-operation --
# and its copy in $dir/before.
make_dirty() {
    local how=$1 path=$2 seed=$3 kill=()
    [ "$how" = kill ] && kill=(kill)
    "$mk" dirty "$path" 300 "$seed" "${kill[@]}" || fail "make_arena dirty $how"
    cp "$path" "$dir/before"
}

finish() {
    echo "$checks checks, $failures failed"
    [ "$failures" = 0 ]
}
