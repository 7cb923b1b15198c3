#!/usr/bin/env python3
"""check_api_names.py -- only API names leave the installed library, and
the test hooks are not in it.

    check_api_names.py NM LIB...                       every LIB clean: exit 0
    check_api_names.py --expect-violations NM LIB...   every LIB dirty: exit 0

For each LIB (an archive, a shared library or an object):
  * the global symbols it defines (nm --defined-only; the dynamic table of
    a shared library) must all be API names: fm_<name> (not the internal
    fm__), fmalloc*, ffree, fcalloc, frealloc.  (Sanitizer builds add no
    globals of their own: the hidden ones they make are localized with ours.)
  * no symbol at all, local ones included, may belong to a test hook (the
    crash points, the fault injection, the caches' spin-lock switch, the
    power-loss trace and its ordering switch): they are compiled only
    with FM_TEST_HOOKS, into the tests' library.

--expect-violations inverts the verdict: run on the tests' internal
archive, which leaks internals and has the hooks by design, it proves that
both checks can fail.
"""
import re
import subprocess
import sys

API = re.compile(r"^(fm_[a-z0-9]\w*|fmalloc\w*|ffree|fcalloc|frealloc)$")
HOOK = re.compile(r"^(fm__cp_\w+|cp_target|cp_steps|os_fault_\w+|fault|fault_take"
                  r"|fm__tc_no_barrier|os_trace_\w+|os_break_ordering)$")


def symbols(nm, lib, extern_only):
    """(type letter, name) of every symbol LIB defines."""
    dynamic = extern_only and ".so" in lib.rsplit("/", 1)[-1]
    cmd = [nm, "--defined-only"] + (["--extern-only"] if extern_only else [])
    cmd += (["-D"] if dynamic else []) + [lib]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    # "ADDR TYPE NAME"; archive member headers ("x.o:") and blanks skipped.
    return [(f[1], f[2]) for f in (line.split() for line in out.splitlines())
            if len(f) == 3]


def violations(nm, lib):
    leaks = sorted({n for _, n in symbols(nm, lib, True) if not API.match(n)})
    hooks = sorted({n for _, n in symbols(nm, lib, False) if HOOK.match(n)})
    return leaks, hooks


def main(argv):
    expect = argv[:1] == ["--expect-violations"]
    if expect:
        argv = argv[1:]
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    nm, libs = argv[0], argv[1:]
    failed = False
    for lib in libs:
        leaks, hooks = violations(nm, lib)
        print(f"{lib}: {len(leaks)} non-API global(s) {' '.join(leaks)}")
        print(f"{lib}: {len(hooks)} test-hook symbol(s) {' '.join(hooks)}")
        if expect:
            failed |= not (leaks and hooks)
        else:
            failed |= bool(leaks or hooks)
    if failed:
        print("FAIL: " + ("a check found nothing where it must" if expect
                          else "internal names or test hooks in the library"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
