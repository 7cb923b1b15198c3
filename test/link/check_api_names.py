#!/usr/bin/env python3
"""check_api_names.py -- only API names leave the installed library.

    check_api_names.py NM LIB...                  every LIB clean: exit 0
    check_api_names.py --expect-leak NM LIB...    every LIB leaks: exit 0

For each LIB (an archive, a shared library or an object), the global
symbols it defines (nm --defined-only; the dynamic table for a shared
library) must all be API names: fm_<name> (not the internal fm__),
fmalloc*, ffree, fcalloc, frealloc.  (Sanitizer builds add no globals
of their own: the hidden ones they make are localized with ours.)

--expect-leak inverts the verdict: run on an archive that was not
localized (the internal library), it proves the check can fail.
"""
import re
import subprocess
import sys

API = re.compile(r"^(fm_[a-z0-9]\w*|fmalloc\w*|ffree|fcalloc|frealloc)$")


def defined_globals(nm, lib):
    dynamic = ".so" in lib.rsplit("/", 1)[-1]
    cmd = [nm, "--defined-only", "--extern-only"] + (["-D"] if dynamic else []) + [lib]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    names = []
    for line in out.splitlines():
        fields = line.split()
        # "ADDR TYPE NAME"; archive member headers ("x.o:") and blanks skipped.
        if len(fields) == 3:
            names.append(fields[2])
    return names


def leaks_of(nm, lib):
    return sorted({n for n in defined_globals(nm, lib)
                   if not API.match(n)})


def main(argv):
    expect_leak = argv[:1] == ["--expect-leak"]
    if expect_leak:
        argv = argv[1:]
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    nm, libs = argv[0], argv[1:]
    failed = False
    for lib in libs:
        leaks = leaks_of(nm, lib)
        if leaks:
            print(f"{lib}: {len(leaks)} non-API global(s): {' '.join(leaks)}")
        else:
            print(f"{lib}: only API globals")
        if bool(leaks) != expect_leak:
            failed = True
    if failed:
        print("FAIL: " + ("expected leaked names, found none" if expect_leak
                          else "internal names leave the library"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
