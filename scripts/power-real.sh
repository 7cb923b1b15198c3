#!/usr/bin/env bash
# power-real.sh -- power cuts on a real file system (issue 16): an arena on
# ext4 on a loop device, changed and committed by test/realimg/power_real,
# the device's backing file cloned at random moments, each clone mounted
# and its arena opened.
#
#   scripts/power-real.sh [BUILDDIR]        (default: build; root only)
#
# The backing file lives on XFS (itself in a loop-mounted image file), so a
# clone is `cp --reflink=always`: the FICLONE ioctl first writes back the
# backing file's page cache, and the loop device's writes are all that ever
# reached that file, so a clone holds exactly what the disk would hold if
# the power failed at that instant.  The kernel's writeback is made eager
# (vm.dirty_expire_centisecs and vm.dirty_writeback_centisecs, restored on
# exit) so that pages the program did not sync reach the disk between
# commits, as they may on any machine.  Each clone is attached, mounted
# (ext4 replays its journal) and checked: `power_real check` opens the
# arena, runs fm_check and compares the state hash with the log of commits
# the program wrote to /tmp, which no clone touches.
#
# Modes (POWER_REAL_MODES, default "default durable"):
#   default  fm_sync every K operations: the baseline.  Refusals
#            (FM_ECORRUPT, FM_ECHECKSUM, the file untouched) and operations
#            after the last sync, whole or half written back, are reported;
#            the promises of docs/crash-model.md fail the run: fm_check
#            passes on what opens, no state older than the last sync, no
#            synced block with a sector reading zero
#   durable  FM_DURABLE, fm_commit every K operations: every image must
#            open at a commit no older than the last one logged before the
#            clone began (at most the one in flight): one refused, stale or
#            mismatched image fails the run
#   default-broken, durable-broken
#            either mode with the library's os_break_ordering switch set:
#            the run fails unless some image breaks the mode's promise (the
#            test must catch orderings broken on purpose)
#
# Environment:
#   POWER_REAL_IMAGES    clones per mode (default 30)
#   POWER_REAL_EVERY     operations per commit (default 40)
#   POWER_REAL_PACE_US   pause after each operation, microseconds (default 200)
#   POWER_REAL_TRIM_EVERY operations per fm_trim, 0 for none (default 509)
#   POWER_REAL_TRIM_ANYWHERE  1: in durable mode trim between commits too
#                        (the first FM_DURABLE fm_trim committed, and this
#                        showed it; now its truncate waits for the next
#                        commit); default 0, the trim waits for the next
#                        commit point
#   POWER_REAL_GAP_MS    mean pause between clones, milliseconds (default 100)
#   POWER_REAL_SEED      the workload's seed (default: from the clock)
#   POWER_REAL_VERBOSE   1: print every image's verdict, not only the bad ones
#   POWER_REAL_TRACE     1: trace the script (set -x) with timestamps
#
# The last line counts each mode, e.g.
#   real images: default 30 (opened 27: ...; refused 3), durable 30 (committed state 30, refused 0, mismatched 0)
# Exit status: 0 passed, 1 failed, 77 skipped (no root, no loop devices, no
# ext4/XFS mounts, no reflink: the reason is printed).  Needs losetup,
# mkfs.ext4 and mkfs.xfs; xfsprogs is installed with apt-get if missing.
set -euo pipefail
[ -z "${POWER_REAL_TRACE-}" ] || { PS4='+ $EPOCHREALTIME '; set -x; }

cd "$(dirname "${BASH_SOURCE[0]}")/.."
BUILD=${1:-build}
IMAGES=${POWER_REAL_IMAGES:-30}
EVERY=${POWER_REAL_EVERY:-40}
PACE_US=${POWER_REAL_PACE_US:-200}
TRIM_EVERY=${POWER_REAL_TRIM_EVERY:-509}
TRIM_ANYWHERE=${POWER_REAL_TRIM_ANYWHERE:-0}
GAP_MS=${POWER_REAL_GAP_MS:-100}
SEED=${POWER_REAL_SEED:-$(date +%s)}
VERBOSE=${POWER_REAL_VERBOSE:-0}
MODES=${POWER_REAL_MODES:-default durable}
PROG=$BUILD/test/realimg/power_real
for mode in $MODES; do
    case $mode in
    default | durable | default-broken | durable-broken) ;;
    *) echo "power-real: unknown mode '$mode'" >&2; exit 1 ;;
    esac
done

skip() {
    echo "power-real: skipped: $*"
    exit 77
}

# ---- what the machine must allow ---------------------------------------------
[ -x "$PROG" ] || { echo "power-real: no $PROG (build it: ninja -C $BUILD)" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || skip "needs root (loop devices, mounts)"
for tool in losetup mount umount mkfs.ext4; do
    command -v "$tool" >/dev/null || skip "no $tool"
done
if ! command -v mkfs.xfs >/dev/null; then
    command -v apt-get >/dev/null || skip "no mkfs.xfs (xfsprogs) and no apt-get"
    echo "power-real: installing xfsprogs"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xfsprogs >/dev/null 2>&1 ||
        skip "mkfs.xfs missing and apt-get install xfsprogs failed"
fi
grep -qw ext4 /proc/filesystems || modprobe ext4 2>/dev/null || skip "no ext4 in this kernel"
grep -qw xfs /proc/filesystems || modprobe xfs 2>/dev/null || skip "no xfs in this kernel"

# ---- cleanup on every exit path ---------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/power-real.XXXXXX")
dev=        # the last device attach made
mounts=()   # mount points, unmounted last first
loops=()    # loop devices, detached last first
sysctls=()  # "path value" to restore
workload_pid=

cleanup() {
    local i
    if [ -n "$workload_pid" ]; then
        kill -TERM "$workload_pid" 2>/dev/null || true
        wait "$workload_pid" 2>/dev/null || true
    fi
    for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
        umount "${mounts[i]}" 2>/dev/null || umount -l "${mounts[i]}" 2>/dev/null || true
    done
    for ((i = ${#loops[@]} - 1; i >= 0; i--)); do
        losetup -d "${loops[i]}" 2>/dev/null || true
    done
    for i in "${sysctls[@]}"; do
        echo "${i#* }" >"${i%% *}" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# attach FILE: a loop device for FILE in $dev, remembered for cleanup (not
# in a subshell: the list must reach the trap).
attach() {
    local try
    for try in 1 2 3; do
        # another program may take the free device between the lookup and
        # the attach: try again
        if dev=$(losetup -f --show "$1" 2>/dev/null); then
            loops+=("$dev")
            return 0
        fi
        sleep 0.2
    done
    return 1
}

# detach DEV: detach and forget it.
detach() {
    local i
    losetup -d "$1"
    for i in "${!loops[@]}"; do
        [ "${loops[i]}" = "$1" ] && unset 'loops[i]'
    done
    loops=("${loops[@]}")
}

# mount_at DEV DIR TYPE [OPTIONS]: mount, remembered for cleanup.
mount_at() {
    mkdir -p "$2"
    mount -t "$3" ${4:+-o "$4"} "$1" "$2" 2>/dev/null || return 1
    mounts+=("$2")
}

# unmount_at DIR: unmount and forget it.
unmount_at() {
    local i
    umount "$1"
    for i in "${!mounts[@]}"; do
        [ "${mounts[i]}" = "$1" ] && unset 'mounts[i]'
    done
    mounts=("${mounts[@]}")
}

# ---- the XFS that holds the backing files -------------------------------------
truncate -s 1G "$WORK/xfs.img"
mkfs.xfs -q -m reflink=1 "$WORK/xfs.img" >/dev/null 2>&1 || skip "mkfs.xfs with reflink failed"
attach "$WORK/xfs.img" || skip "cannot attach a loop device (losetup -f)"
mount_at "$dev" "$WORK/xfs" xfs || skip "cannot mount XFS on $dev"
XFS=$WORK/xfs
: >"$XFS/probe" && cp --reflink=always "$XFS/probe" "$XFS/probe.clone" 2>/dev/null ||
    skip "no reflink copies on XFS"
rm -f "$XFS/probe" "$XFS/probe.clone"

# ---- eager writeback --------------------------------------------------------
for knob in dirty_expire_centisecs dirty_writeback_centisecs; do
    f=/proc/sys/vm/$knob
    old=$(cat "$f")
    if echo 5 >"$f" 2>/dev/null; then
        sysctls+=("$f $old")
    else
        echo "power-real: note: cannot set vm.$knob (writeback stays at ${old}0 ms)"
    fi
done

# ---- one mode ---------------------------------------------------------------
# logged LOG: logged_n = the commits LOG holds whole (lines ending in a
# newline: the one being written may not yet).
logged() {
    local lines
    mapfile lines <"$1"
    logged_n=${#lines[@]}
    if [ "$logged_n" -gt 0 ] && [[ ${lines[logged_n - 1]} != *$'\n' ]]; then
        logged_n=$((logged_n - 1))
    fi
}

# verdicts[mode] = space-separated verdict words, one per image
declare -A verdicts times failures
status=0

run_mode() {
    local mode=$1 flags=() check_flags=() start=$SECONDS
    case $mode in
    default) ;;
    durable) flags=(--durable) check_flags=(--durable) ;;
    default-broken) flags=(--break-ordering) ;;
    durable-broken) flags=(--durable --break-ordering) check_flags=(--durable) ;;
    esac
    [ "$TRIM_ANYWHERE" != 1 ] || flags+=(--trim-anywhere)
    local back=$XFS/ext4-$mode.img ext4 log=$WORK/log-$mode
    truncate -s 64M "$back"
    mkfs.ext4 -q -F "$back" >/dev/null 2>&1 || skip "mkfs.ext4 failed"
    attach "$back" || skip "cannot attach a second loop device"
    ext4=$dev
    mount_at "$ext4" "$WORK/ext4-$mode" ext4 || skip "cannot mount ext4 on $ext4"

    "$PROG" run --arena "$WORK/ext4-$mode/arena" --log "$log" "${flags[@]}" \
        --every "$EVERY" --seed "$SEED" --pace-us "$PACE_US" \
        --trim-every "$TRIM_EVERY" >"$WORK/run-$mode.out" 2>&1 &
    workload_pid=$!
    local t=0
    while [ ! -s "$log" ]; do
        kill -0 "$workload_pid" 2>/dev/null || break
        sleep 0.05
        t=$((t + 1))
        [ $t -lt 200 ] || break
    done

    # Take the clones; each with the commits logged before and after it
    # (no forks around the clone but cp's: they take tens of ms on a
    # loaded machine).
    local i ms lo hi bounds=()
    for ((i = 1; i <= IMAGES; i++)); do
        ms=$((RANDOM * 2 * GAP_MS / 32768))
        printf -v ms '%d.%03d' $((ms / 1000)) $((ms % 1000))
        sleep "$ms"
        kill -0 "$workload_pid" 2>/dev/null || break
        logged "$log"
        lo=$logged_n
        cp --reflink=always "$back" "$XFS/clone-$i.img"
        logged "$log"
        hi=$logged_n
        bounds+=("$lo $((hi + 1))")
    done
    local rc=0 cloned=$SECONDS
    kill -TERM "$workload_pid" 2>/dev/null || true
    wait "$workload_pid" || rc=$?
    workload_pid=
    if [ "$rc" -ne 0 ] || [ ${#bounds[@]} -ne "$IMAGES" ]; then
        echo "power-real: $mode: the workload failed (exit $rc, ${#bounds[@]} of $IMAGES images):"
        sed 's/^/    /' "$WORK/run-$mode.out"
        status=1
    fi
    unmount_at "$WORK/ext4-$mode"
    detach "$ext4"
    rm -f "$back"

    # Check each clone: attach, mount (journal replay), open, hash.
    local mnt=$WORK/image out crc words=() bad=0
    for ((i = 1; i <= ${#bounds[@]}; i++)); do
        read -r lo hi <<<"${bounds[i - 1]}"
        out="mountfail" crc=1
        if attach "$XFS/clone-$i.img"; then
            # barrier=0: the check's own syncs need not reach the real disk
            # (the clone is thrown away); the journal replays all the same
            if mount_at "$dev" "$mnt" ext4 barrier=0; then
                crc=0
                out=$("$PROG" check --arena "$mnt/arena" --log "$log" "${check_flags[@]}" \
                    --min "$lo" --max "$hi" 2>&1) || crc=$?
                unmount_at "$mnt"
            fi
            detach "$dev"
        fi
        words+=("${out%% *}")
        [ "$crc" -eq 0 ] || bad=$((bad + 1))
        if [ "$crc" -ne 0 ]; then
            echo "  $mode image $i (commits $lo..$hi): $out  <- not allowed"
        elif [ "$VERBOSE" = 1 ] || ! [[ $out =~ ^(committed|later) ]]; then
            echo "  $mode image $i (commits $lo..$hi): $out"
        fi
    done
    verdicts[$mode]="${words[*]}"
    failures[$mode]=$bad
    times[$mode]=$((SECONDS - start))
    echo "power-real: $mode: ${#words[@]} images, $(tail -n 1 "$WORK/run-$mode.out")," \
        "${times[$mode]} s (workload and clones $((cloned - start)) s, checks $((SECONDS - cloned)) s)"
}

# count WORD MODE: how many of MODE's images got verdict WORD.
count() {
    local w n=0
    for w in ${verdicts[$2]}; do
        [ "$w" = "$1" ] && n=$((n + 1))
    done
    echo $n
}

echo "power-real: seed $SEED, $IMAGES images per mode, commit every $EVERY operations," \
    "${PACE_US} us between operations, clones ${GAP_MS} ms apart on average"
line=()
for mode in $MODES; do
    run_mode "$mode"
    n=$(wc -w <<<"${verdicts[$mode]}")
    bad=${failures[$mode]}
    committed=$(count committed "$mode")
    refused=$(count refused "$mode")
    if [ "${mode%-broken}" = default ]; then
        later=$(count later "$mode")
        torn=$(count torn "$mode")
        dangling=$(count dangling "$mode")
        line+=("$mode $n (opened $((committed + later + torn + dangling)): at a sync $committed, later $later, half-written blocks $torn, dangling links $dangling; refused $refused; broken promises $bad)")
    else
        refused=$((refused + $(count badrefusal "$mode")))
        line+=("$mode $n (committed state $committed, refused $refused, mismatched $((n - committed - refused)))")
    fi
    if [ "$mode" != "${mode%-broken}" ]; then
        if [ "$bad" -eq 0 ]; then
            echo "power-real: FAILED: the broken ordering went unnoticed" >&2
            status=1
        fi
    elif [ "$bad" -ne 0 ]; then
        echo "power-real: FAILED: $bad $mode image(s) broke the mode's promise" >&2
        status=1
    fi
done
joined=${line[0]-}
for part in "${line[@]:1}"; do
    joined+=", $part"
done
echo "real images: $joined"
exit $status
