#!/bin/bash
# damage.sh FMTOOL MAKE_ARENA [ROUNDS] -- fmtool on damaged files never
# crashes: random bytes of a clean and of a dirty arena (superblock state,
# undo log, chunk headers near the start of the heap) are inverted, and
# every command must end with exit 0, 1 or 2 -- never a signal -- and
# never change the file.  Seeded by FM_TEST_SEED (printed).
source "$(dirname "$0")/lib.sh"
rounds=${3:-100}
seed=${FM_TEST_SEED:-$(date +%s)}
echo "seed $seed (FM_TEST_SEED=$seed replays it)"
RANDOM=$seed

"$mk" random "$dir/clean.fm" 300 "$seed" || fail "make_arena random"
"$mk" dirty "$dir/dirty.fm" 300 "$seed" kill || fail "make_arena dirty"
c=$("$mk" first-chunk "$dir/clean.fm")
declare -A seen=()
mkdir "$dir/json"
for i in $(seq "$rounds"); do
    src=$dir/clean.fm
    [ $((i % 2)) = 0 ] && src=$dir/dirty.fm
    f=$dir/d.fm
    cp "$src" "$f"
    offs=
    for _ in $(seq $((1 + RANDOM % 4))); do
        case $((RANDOM % 4)) in
        0) o=$((128 + RANDOM % 3968)) ;;            # state part and undo log
        1) o=$((c + 8 + RANDOM % 8)) ;;             # the first chunk's head
        2) o=$((12288 + (RANDOM * 16) % 65536 + 8 + RANDOM % 8)) ;; # some chunk head
        3) o=$((12288 + RANDOM % 65536)) ;;         # anywhere near the heap start
        esac
        "$mk" flip "$f" "$o"
        offs="$offs $o"
    done
    cp "$f" "$dir/before"
    for cmd in info stats check map snapshot; do
        rm -f "$dir/copy.fm"
        case $cmd in
        map) "$fmtool" map "$f" -o "$dir/m.svg" >/dev/null 2>"$dir/err" ;;
        snapshot) "$fmtool" snapshot "$f" "$dir/copy.fm" >/dev/null 2>"$dir/err" ;;
        *) "$fmtool" $cmd --json "$f" >"$dir/json/$i-$cmd" 2>"$dir/err" ;;
        esac
        rc=$?
        checks=$((checks + 1))
        if [ $rc -gt 2 ]; then
            keep=${TMPDIR:-/tmp}/fmtool-crash-$seed-$i.fm
            cp "$f" "$keep"
            fail "fmtool $cmd exited $rc on $(basename "$src") with bytes$offs inverted (kept as $keep): $(cat "$dir/err")"
        fi
        seen[$cmd$rc]=1
        [ $rc = 0 ] && [ $cmd = snapshot ] && ! "$fmtool" check "$dir/copy.fm" >/dev/null 2>&1 &&
            fail "snapshot succeeded but the copy does not check clean (bytes$offs inverted)"
    done
    cmp -s "$f" "$dir/before" || fail "a command changed the damaged file (bytes$offs inverted)"
done
# Every --json run printed one JSON object, whatever its exit code (one
# python3 for all of them: it is slow to start).
if $have_python; then
    checks=$((checks + 1))
    python3 -c '
import json, os, sys
bad = []
for name in sorted(os.listdir(sys.argv[1])):
    try:
        with open(os.path.join(sys.argv[1], name)) as f:
            assert isinstance(json.load(f), dict)
    except Exception as e:
        bad.append("%s: %s" % (name, e))
print("\n".join(bad))
sys.exit(1 if bad else 0)' "$dir/json" || fail "--json printed something that is not one JSON object"
fi
echo "outcomes seen (command, exit code): ${!seen[*]}"
finish
