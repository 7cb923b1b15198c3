#!/usr/bin/env bash
# install.sh SRC -- fmalloc as a user installs and uses it.
#
# Configures SRC in a temporary directory with --prefix=TMP/prefix (tests
# and bench off), runs `meson install`, then checks that everything landed
# in the prefix and only there, that the library exports only the API, and
# builds and runs against the prefix: a C consumer via pkg-config (shared
# and static), a C++ consumer via pkg-config, a CMake consumer via
# find_package(fmalloc CONFIG) (shared and static, and a version it must
# refuse), the installed examples with their Makefile, the installed fmtool
# on the consumer's arena, and man -l on every installed page.
source "$(dirname "$0")/lib.sh"
src=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
prefix=$work/prefix

setup_or_die setup meson setup "$work/build" "$src" --prefix="$prefix" \
    -Dtests=disabled -Dbench=disabled -Dexamples=disabled -Dman=enabled
setup_or_die build ninja -C "$work/build"
setup_or_die install meson install -C "$work/build"

pc=$(find "$prefix" -name fmalloc.pc)
libdir=$(dirname "$(dirname "$pc")")
export PKG_CONFIG_PATH=$libdir/pkgconfig
docdir=$prefix/share/doc/fmalloc
echo "installed: libdir $libdir"

only_in_prefix() {
    meson introspect --installed "$work/build" |
        python3 -c 'import json, sys; bad = [d for d in json.load(sys.stdin).values()
                    if not d.startswith(sys.argv[1] + "/")]; print(bad); sys.exit(bool(bad))' "$prefix"
}
check only-in-prefix only_in_prefix

has_files() {
    local f rc=0
    for f in bin/fmtool include/fmalloc.h include/fmalloc.hpp \
        "${libdir#"$prefix"/}"/{libfmalloc.so.0,libfmalloc.so,libfmalloc.a,pkgconfig/fmalloc.pc} \
        "${libdir#"$prefix"/}"/cmake/fmalloc/{fmallocConfig.cmake,fmallocConfigVersion.cmake} \
        share/man/man1/fmtool.1 share/man/man3/{fmalloc.3,fm_open.3,fm_close.3,fm_version.3,fmalloc_init.3} \
        share/bash-completion/completions/fmtool \
        share/doc/fmalloc/{README.md,docs/api.md,docs/design.md,examples/list.c,examples/Makefile}; do
        [ -e "$prefix/$f" ] || { echo "missing: $f"; rc=1; }
    done
    return $rc
}
check files has_files

api_only() {
    local extra
    nm -D --defined-only "$libdir/libfmalloc.so.0" | awk '{print $3}' | sort >"$work/exports"
    wc -l <"$work/exports"
    extra=$(grep -vE '^(fm_|fmalloc|ffree$|fcalloc$|frealloc$)' "$work/exports" || true)
    [ -z "$extra" ] || { echo "not API: $extra"; return 1; }
    grep -qx fm_version "$work/exports"
}
check exports-api-only api_only

cflags=$(pkg-config --cflags fmalloc) || exit 1
libs=$(pkg-config --libs fmalloc) || exit 1

c_shared() {
    cc -std=c11 -Wall -Wextra -Werror "$here/consumer/consumer.c" $cflags $libs \
        -Wl,-rpath,"$libdir" -o "$work/c_shared" &&
        readelf -d "$work/c_shared" | grepq 'NEEDED.*libfmalloc\.so\.0' &&
        "$work/c_shared" "$work/c.fm" && "$work/c_shared" "$work/c.fm" | grepq -x 'runs=2 version=[0-9.]* format=[0-9]*'
}
check c-pkgconfig-shared c_shared

c_static() {
    # the archive instead of -lfmalloc, plus what --static says it needs
    local static_libs
    static_libs=$(pkg-config --static --libs fmalloc | sed "s|-lfmalloc|$libdir/libfmalloc.a|")
    cc -std=c11 -Wall -Wextra -Werror "$here/consumer/consumer.c" $cflags $static_libs \
        -o "$work/c_static" &&
        ! readelf -d "$work/c_static" | grepq 'NEEDED.*libfmalloc' &&
        "$work/c_static" "$work/c_static.fm"
}
check c-pkgconfig-static c_static

cpp_shared() {
    c++ -std=c++11 -Wall -Wextra -Werror "$here/consumer/consumer.cpp" $cflags $libs \
        -Wl,-rpath,"$libdir" -o "$work/cpp" &&
        "$work/cpp" "$work/cpp.fm" | grepq -x 'sum=6' &&
        "$work/cpp" "$work/cpp.fm" | grepq -x 'sum=6'
}
check cpp-pkgconfig cpp_shared

cmake_consumer() { # cmake_consumer NAME [cmake -D options...]
    local name=$1
    shift
    cmake -S "$here/consumer" -B "$work/cmake-$name" -DCMAKE_PREFIX_PATH="$prefix" \
        -DCMAKE_BUILD_RPATH="$libdir" "$@" &&
        cmake --build "$work/cmake-$name" &&
        "$work/cmake-$name/consumer" "$work/cmake-$name.fm"
}
cmake_shared() {
    cmake_consumer shared &&
        readelf -d "$work/cmake-shared/consumer" | grepq 'NEEDED.*libfmalloc\.so\.0'
}
cmake_static() {
    cmake_consumer static -Dfmalloc_USE_STATIC_LIBS=ON &&
        ! readelf -d "$work/cmake-static/consumer" | grepq 'NEEDED.*libfmalloc'
}
check cmake-find-package cmake_shared
check cmake-static cmake_static
check cmake-refuses-version-1 must_fail cmake_consumer v1 -DFM_WANT_VERSION=1.0

examples() {
    cp -r "$docdir/examples" "$work/examples" &&
        make -C "$work/examples" &&
        (cd "$work/examples" && ./list l.fm && ./list l.fm | grepq '^' &&
            ./kv kv.fm put lang C11 && ./kv kv.fm get lang | grepq C11 &&
            ./list-cpp lc.fm)
}
check installed-examples examples

fmtool_installed() {
    "$prefix/bin/fmtool" -V | grepq -x "fmtool (fmalloc $(pkg-config --modversion fmalloc), file format [0-9]*)" &&
        "$prefix/bin/fmtool" check "$work/c.fm"
}
check installed-fmtool fmtool_installed

man_pages() {
    local page err rc=0 n=0
    for page in "$prefix"/share/man/man[13]/*; do
        err=$(MANWIDTH=80 MANPAGER=cat man --warnings -l "$page" 2>&1 >/dev/null)
        [ -z "$err" ] || { echo "$page: $err"; rc=1; }
        n=$((n + 1))
    done
    echo "$n pages"
    [ "$n" -ge 10 ] && return $rc
}
check man-pages man_pages

finish
