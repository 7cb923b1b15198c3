#!/bin/sh
# localize_archive.sh LD OBJCOPY AR OUT.a IN.a...
#
# Makes the installed static library keep its internals to itself.  The
# shared library exports only FM_API (default-visibility) symbols because
# the dynamic linker honours -fvisibility=hidden; an archive does not: each
# of its objects defines the cross-file internals (os_open, heap_free,
# tc_init...) as ordinary globals, and a program with a function of the
# same name fails to link.  So: link every object of the IN.a archives
# (the library's, and a bundled dependency's if there is one) into one
# relocatable object (ld -r resolves the internal references inside it),
# turn its hidden globals into locals (objcopy --localize-hidden), and
# archive that one object as OUT.a.  What stays global is the API, plus
# what the object needs from outside (libc, libxxhash, sanitizer runtimes).
set -eu
if [ $# -lt 5 ]; then
    echo "usage: $0 LD OBJCOPY AR OUT.a IN.a..." >&2
    exit 2
fi
ld=$1 objcopy=$2 ar=$3 out=$4
shift 4

tmp=$(mktemp -d "${TMPDIR:-/tmp}/fm-localize.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
obj=$tmp/fmalloc.o

"$ld" -r -o "$obj" --whole-archive "$@" --no-whole-archive
"$objcopy" --localize-hidden "$obj"
rm -f "$out"
"$ar" rcs "$out" "$obj"
