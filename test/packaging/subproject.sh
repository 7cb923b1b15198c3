#!/usr/bin/env bash
# subproject.sh SRC -- fmalloc as a Meson subproject of a parent project
# (parent/; subprojects/fmalloc is a symlink to SRC made here).
#
# Checks: by default the parent builds the library alone -- no fmalloc test
# in its `meson test --list`, no fmtool, nothing of fmalloc installed by
# `meson install --destdir`, and (nothing installed) the parent's program
# links the archive; -Dfmalloc:default_library=shared links
# libfmalloc.so.0, =static does not even build it; -Dfmalloc:install=enabled
# installs the library, header and fmalloc.pc; -Dfmalloc:tests=enabled
# brings fmalloc's tests back.
source "$(dirname "$0")/lib.sh"
src=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)

parent=$work/parent
b=$work/build
cp -r "$here/parent" "$parent"
mkdir -p "$parent/subprojects"
ln -s "$src" "$parent/subprojects/fmalloc"

setup_or_die setup meson setup "$b" "$parent" --prefix=/usr
setup_or_die build ninja -C "$b"

no_fmalloc_tests() {
    meson test -C "$b" --no-rebuild --list >"$work/tests" 2>&1
    cat "$work/tests"
    grep -q 'parent_app' "$work/tests" && ! grep -q '^fmalloc:' "$work/tests"
}
check no-fmalloc-tests no_fmalloc_tests

only_the_library_built() {
    [ -e "$b/subprojects/fmalloc/lib/libfmalloc.a" ] &&
        [ ! -e "$b/subprojects/fmalloc/tools/fmtool" ] &&
        [ ! -e "$b/subprojects/fmalloc/examples/list" ] &&
        [ ! -e "$b/subprojects/fmalloc/stress/mmap_stress" ]
}
check only-the-library-built only_the_library_built

installs_only_parent() { # installs_only_parent DESTDIR
    meson install -C "$b" --no-rebuild --destdir "$1" >/dev/null &&
        (cd "$1" && find . -type f -o -type l | sort) >"$work/installed" &&
        cat "$work/installed" &&
        [ "$(cat "$work/installed")" = "./usr/bin/parent_app" ]
}
check installs-nothing-of-fmalloc installs_only_parent "$work/dest-default"

not_needed() { ! readelf -d "$b/parent_app" | grepq 'NEEDED.*libfmalloc'; }
needed() { readelf -d "$b/parent_app" | grepq 'NEEDED.*libfmalloc\.so\.0'; }
runs() { meson test -C "$b" parent_app; }

check default-links-archive not_needed
check default-runs runs

reconfigure() { meson configure "$b" "$@" && ninja -C "$b"; }

shared() { reconfigure -Dfmalloc:default_library=shared && needed && runs; }
check shared-when-asked shared

static() {
    reconfigure -Dfmalloc:default_library=static && not_needed && runs &&
        ! grep -q 'libfmalloc\.so' "$b/build.ninja"
}
check static-when-asked static

install_when_asked() {
    reconfigure -Dfmalloc:default_library=shared -Dfmalloc:install=enabled &&
        meson install -C "$b" --no-rebuild --destdir "$work/dest-install" >/dev/null &&
        (cd "$work/dest-install" && find . | sort) >"$work/installed2" &&
        cat "$work/installed2" &&
        grep -q 'libfmalloc\.so\.0$' "$work/installed2" &&
        grep -q 'include/fmalloc\.h$' "$work/installed2" &&
        grep -q 'pkgconfig/fmalloc\.pc$' "$work/installed2"
}
check install-when-asked install_when_asked

tests_when_asked() {
    meson setup --reconfigure "$b" "$parent" -Dfmalloc:tests=enabled &&
        meson test -C "$b" --no-rebuild --list 2>&1 | grepq '^fmalloc:api / version$'
}
check tests-when-asked tests_when_asked

finish
