#!/usr/bin/env bash
# wrap.sh SRC -- the xxHash fallback (subprojects/xxhash.wrap and
# subprojects/packagefiles/xxhash/).
#
#   wrap-file        the wrap parses and says what Meson needs: the release
#                    tarball's URL, name and SHA-256, the overlay, and that
#                    it provides libxxhash
#   system-first     with the system's libxxhash and --wrap-mode=nodownload,
#                    setup uses the system library (the wrap is not needed)
#   fallback-build   a parent with fmalloc as a subproject (no wrap of its
#                    own: Meson finds fmalloc's) and
#                    --force-fallback-for=libxxhash builds xxHash from our
#                    overlay and links it into libfmalloc: the program runs,
#                    libfmalloc.so has no NEEDED libxxhash and exports no
#                    XXH symbol.  Offline the release is not downloaded:
#                    with $FM_XXHASH_TARBALL (the release tarball, checked
#                    against the wrap's hash) Meson unpacks it from its
#                    package cache; without it, a stand-in holding the
#                    system's xxhash.h and a one-line xxhash.c takes its
#                    place (the download and unpacking are then untested)
#   missing-system-lib  the same without --force-fallback-for, pkg-config
#                    finding no libxxhash (as without libxxhash-dev)
source "$(dirname "$0")/lib.sh"
src=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)

wrap_file() {
    python3 - "$src/subprojects/xxhash.wrap" "$src/subprojects/packagefiles" <<'PY'
import configparser, os, re, sys
w = configparser.ConfigParser(interpolation=None)
w.read_string(open(sys.argv[1]).read())
f = w["wrap-file"]
assert f["source_url"].startswith("https://") and f["source_url"].endswith(".tar.gz"), f["source_url"]
assert re.fullmatch(r"[0-9a-f]{64}", f["source_hash"]), f["source_hash"]
assert f["source_filename"].endswith(".tar.gz")
assert os.path.isfile(os.path.join(sys.argv[2], f["patch_directory"], "meson.build"))
assert w["provide"]["libxxhash"] == "xxhash_dep"
print(f["directory"], f["source_url"], f["source_hash"])
PY
}
check wrap-file wrap_file

system_first() {
    meson setup "$work/sys" "$src" --wrap-mode=nodownload -Dtests=disabled \
        -Dtools=disabled -Dexamples=disabled -Dman=disabled -Dbench=disabled &&
        grep -q 'libxxhash found: YES' "$work/sys/meson-logs/meson-log.txt" &&
        [ ! -d "$work/sys/subprojects/xxHash-0.8.1" ]
}
if pkg-config --exists libxxhash; then
    check system-first system_first
else
    echo "skip - system-first: no system libxxhash"
fi

parent=$work/parent
cp -r "$here/parent" "$parent"
mkdir -p "$parent/subprojects"
ln -s "$src" "$parent/subprojects/fmalloc"
# The parent has no wrap of its own: Meson finds fmalloc's
# subprojects/xxhash.wrap and lays the subproject out in the parent's
# subprojects/ (where its package cache and the stand-in go).
dir=$(sed -n 's/^directory *= *//p' "$src/subprojects/xxhash.wrap")
tarball=$(sed -n 's/^source_filename *= *//p' "$src/subprojects/xxhash.wrap")
if [ -n "${FM_XXHASH_TARBALL:-}" ]; then
    mkdir -p "$parent/subprojects/packagecache"
    cp "$FM_XXHASH_TARBALL" "$parent/subprojects/packagecache/$tarball"
    echo "using the release tarball $FM_XXHASH_TARBALL"
elif [ -f /usr/include/xxhash.h ]; then
    mkdir -p "$parent/subprojects/$dir"
    cp /usr/include/xxhash.h "$parent/subprojects/$dir/"
    printf '#define XXH_STATIC_LINKING_ONLY\n#define XXH_IMPLEMENTATION\n#include "xxhash.h"\n' \
        >"$parent/subprojects/$dir/xxhash.c"
    cp "$src/subprojects/packagefiles/xxhash/meson.build" "$parent/subprojects/$dir/"
    echo "stand-in for the release: the system's xxhash.h (set FM_XXHASH_TARBALL to test the tarball)"
else
    echo "skip - fallback-build: neither FM_XXHASH_TARBALL nor /usr/include/xxhash.h"
    finish
    exit $?
fi

fallback_build() {
    local so
    meson setup "$work/fb" "$parent" --wrap-mode=nodownload --force-fallback-for=libxxhash \
        -Dfmalloc:default_library=shared &&
        ninja -C "$work/fb" &&
        grep -q 'Using subprojects/fmalloc/subprojects/xxhash.wrap' \
            "$work/fb/meson-logs/meson-log.txt" &&
        meson test -C "$work/fb" parent_app &&
        so=$(find "$work/fb/subprojects/fmalloc" -name 'libfmalloc.so.0') &&
        ! readelf -d "$so" | grepq 'NEEDED.*xxhash' &&
        ! nm -D --defined-only "$so" | grepq XXH
}
check fallback-build fallback_build

# As on a machine without libxxhash-dev: pkg-config finds no libxxhash, so
# the plain setup (no --force-fallback-for) falls back to the wrap by itself.
missing_system_lib() {
    mkdir -p "$work/no-pc" &&
        PKG_CONFIG_LIBDIR=$work/no-pc meson setup "$work/nosys" "$parent" --wrap-mode=nodownload &&
        grepq 'Using subprojects/fmalloc/subprojects/xxhash.wrap' "$work/nosys/meson-logs/meson-log.txt" &&
        ninja -C "$work/nosys" &&
        meson test -C "$work/nosys" parent_app
}
check missing-system-lib missing_system_lib
finish
