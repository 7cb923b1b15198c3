#!/bin/sh
# disk_full.sh PROGRAM -- run PROGRAM DIR in an 8 MiB tmpfs of its own, in a
# mount namespace so nothing is left mounted.  Skips (77) where this
# process may not mount (no root, no user namespaces).
prog=$1
dir=$(mktemp -d) || exit 1
trap 'rmdir "$dir" 2>/dev/null' EXIT
try() { "$@" sh -c 'mount -t tmpfs -o size=8m fmtest "$1" && exec "$2" "$1"' sh "$dir" "$prog"; }
if unshare -m true 2>/dev/null; then
    try unshare -m
elif unshare -r -m true 2>/dev/null; then
    try unshare -r -m
else
    echo "SKIP: cannot mount a small tmpfs here (needs root or user namespaces)"
    exit 77
fi
