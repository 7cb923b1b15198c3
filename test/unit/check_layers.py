#!/usr/bin/env python3
"""check_layers.py -- lib/ must be layered as docs/design.md says.

    check_layers.py DESIGN_MD LIB_DIR NM ARCHIVE

DESIGN_MD holds one fenced block whose info string is `layers`:

    # comment
    FILE: HEADER...          the lib headers FILE includes ("-": none);
                             every file of lib/ has exactly one such line
    module NAME: FILE...     files that form one module (by default a
                             module is X.c with X.h)
    call A -> B              module A calls into module B although no
                             include of A reaches B (a header of A
                             declares B's functions)
    cycle A B...             a known exception: these modules depend on
                             each other
    public NAME              module NAME uses the library only as a program
                             would: it includes no header of lib/, and every
                             symbol it takes from another object of the
                             library is one the public header declares
                             (FM_API in include/fmalloc.h); it needs no
                             `call` line for those

The test reads every `#include "..."` of lib/*.c and lib/*.h and, with
NM, which object of ARCHIVE (the library's objects) uses which other's
global symbols.  It fails when
  * an include is missing from the table, or the table lists one the code
    does not have (the table is the house as it stands, not a wish);
  * a file of lib/ has no line, or a line names no file of lib/;
  * a call goes from module A to module B where B is not reachable from A
    through includes, and no `call A -> B` line allows it (or such a line
    is not needed any more);
  * a `public` module includes a header of lib/ or uses a symbol that
    include/fmalloc.h does not declare;
  * modules depend on each other (a cycle of includes and calls) unless a
    `cycle` line names exactly that group; a `cycle` line whose group is no
    longer a cycle fails too, so the line is deleted when the cycle is.
Known exceptions found are printed.  Headers not in lib/ (fmalloc.h,
fm_config.h, system headers in <>) are not modules.
"""
import os
import re
import subprocess
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def read_block(design_md):
    text = open(design_md, encoding="utf-8").read()
    m = re.search(r"^```layers\n(.*?)^```", text, re.M | re.S)
    if not m:
        sys.exit(f"{design_md}: no ```layers block")
    return m.group(1).splitlines()


def parse_doc(lines):
    table, modules, calls, cycles, public, errors = {}, {}, set(), [], set(), []
    for n, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("module "):
            name, _, files = line[len("module "):].partition(":")
            for f in files.split():
                modules[f] = name.strip()
        elif line.startswith("call "):
            a, _, b = line[len("call "):].partition("->")
            calls.add((a.strip(), b.strip()))
        elif line.startswith("cycle "):
            cycles.append(frozenset(line.split()[1:]))
        elif line.startswith("public "):
            public.update(line.split()[1:])
        elif ":" in line:
            f, _, hs = line.partition(":")
            hs = hs.split()
            if f.strip() in table:
                errors.append(f"layers line {n}: {f.strip()} listed twice")
            table[f.strip()] = set() if hs == ["-"] else set(hs)
        else:
            errors.append(f"layers line {n}: cannot read '{raw}'")
    return table, modules, calls, cycles, public, errors


def public_names(header):
    """The functions and objects include/fmalloc.h declares with FM_API."""
    text = open(header, encoding="utf-8").read()
    text = re.sub(r"/\*.*?\*/|//[^\n]*|^\s*#[^\n]*", "", text, flags=re.S | re.M)
    return set(re.findall(r"\bFM_API\b[^;{]*?\b([A-Za-z_]\w*)\s*(?:\(|;|\[)", text))


def code_includes(lib_dir):
    found = {}
    for f in sorted(os.listdir(lib_dir)):
        if f.endswith((".c", ".h")):
            text = open(os.path.join(lib_dir, f), encoding="utf-8").read()
            found[f] = set(INCLUDE.findall(text))
    return found


def module_of(f, modules):
    return modules.get(f, os.path.splitext(f)[0])


def object_calls(nm, archive, sources):
    """(a.c, b.c, symbol) for every global symbol a.c's object uses that b.c's
    defines."""
    out = subprocess.run([nm, "-A", archive], check=True, capture_output=True,
                         text=True).stdout
    defs, uses = {}, {}
    for line in out.splitlines():
        m = re.match(r"^(.*?):\s*(?:[0-9a-fA-F]+)?\s+([A-Za-z])\s+(\S+)$", line)
        if not m:
            continue
        member = m.group(1).rsplit(":", 1)[-1].rsplit("/", 1)[-1]
        src = max((s for s in sources if re.search(r"(^|[^A-Za-z0-9])" + re.escape(s)
                                                    + r"\.o$", member)),
                  key=len, default=None)
        if src is None:
            continue
        kind, sym = m.group(2), m.group(3)
        if kind == "U":
            uses.setdefault(src, set()).add(sym)
        elif kind.isupper():
            defs[sym] = src
    return {(a, defs[s], s) for a, syms in uses.items() for s in syms
            if s in defs and defs[s] != a}


def reachable(graph, start):
    seen, todo = set(), [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def strongly_connected(graph):
    """Groups of two or more nodes that reach each other."""
    nodes = set(graph) | {b for bs in graph.values() for b in bs}
    reach = {n: reachable(graph, n) for n in nodes}
    groups = set()
    for n in nodes:
        group = frozenset(m for m in nodes if m == n or (m in reach[n] and n in reach[m]))
        if len(group) > 1:
            groups.add(group)
    return groups


def main(argv):
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    design_md, lib_dir, nm, archive = argv
    table, modules, doc_calls, doc_cycles, public, errors = parse_doc(read_block(design_md))
    code = code_includes(lib_dir)
    api = public_names(os.path.join(lib_dir, os.pardir, "include", "fmalloc.h"))

    # Includes: exactly the table.
    for f in sorted(set(code) - set(table)):
        errors.append(f"lib/{f} is not in the layers table")
    for f in sorted(set(table) - set(code)):
        errors.append(f"the layers table lists {f}, which lib/ does not have")
    for f in sorted(set(code) & set(table)):
        for h in sorted(code[f] - table[f]):
            errors.append(f"lib/{f} includes \"{h}\": not allowed by the layers table")
        for h in sorted(table[f] - code[f]):
            errors.append(f"the layers table lets {f} include {h}, which it does not: "
                          f"delete it")

    # Module graph: includes between lib files, then calls.
    lib_files = set(code)
    graph = {}
    for f, hs in code.items():
        for h in hs:
            a, b = module_of(f, modules), module_of(h, modules)
            if h in lib_files and a != b:
                graph.setdefault(a, set()).add(b)
    by_include = {a: reachable(graph, a) for a in set(map(lambda f: module_of(f, modules),
                                                           lib_files))}
    sources = [f for f in lib_files if f.endswith(".c")]
    used_calls = set()
    all_modules = {module_of(f, modules) for f in lib_files}
    for name in sorted(public - all_modules):
        errors.append(f"'public {name}': lib/ has no module {name}")
    for f in sorted(lib_files):
        if module_of(f, modules) in public:
            for h in sorted(code[f] & lib_files):
                errors.append(f"lib/{f} includes \"{h}\": module {module_of(f, modules)} is "
                              f"public, it may include only include/fmalloc.h")
    for a_src, b_src, sym in sorted(object_calls(nm, archive, sources)):
        a, b = module_of(a_src, modules), module_of(b_src, modules)
        if a in public and a != b:
            if sym not in api:
                errors.append(f"{a_src} uses {sym} of {b_src}: module {a} is public, it may "
                              f"use only what include/fmalloc.h declares")
            graph.setdefault(a, set()).add(b)
            continue
        if a == b or b in by_include.get(a, ()):
            continue
        if (a, b) in doc_calls:
            used_calls.add((a, b))
            graph.setdefault(a, set()).add(b)
        else:
            errors.append(f"{a_src} calls into {b_src}: module {b} is below no include of "
                          f"{a}, and no 'call {a} -> {b}' line allows it")
    for a, b in sorted(doc_calls - used_calls):
        errors.append(f"'call {a} -> {b}' is not needed (no such call, or an include "
                      f"reaches {b}): delete it")

    # Cycles: only the known exceptions.
    found = strongly_connected(graph)
    for group in sorted(found, key=sorted):
        names = " ".join(sorted(group))
        if group in doc_cycles:
            print(f"known exception: modules {names} depend on each other")
        else:
            errors.append(f"cycle: modules {names} depend on each other "
                          f"(not a known exception)")
    for group in doc_cycles:
        if group not in found:
            errors.append(f"'cycle {' '.join(sorted(group))}' is no longer a cycle: "
                          f"delete the line")

    for e in errors:
        print("FAIL:", e)
    print(f"{len(code)} files, {sum(map(len, code.values()))} includes, "
          f"{len(errors)} problem(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
