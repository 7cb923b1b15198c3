#!/usr/bin/env python3
"""Check that every relative link and #anchor in Markdown files resolves.

    check_links.py ROOT FILE.md...

For each [text](target) and ![alt](target) outside code: a target with a
scheme (https:, mailto:) is skipped; otherwise its path (relative to the
file) must exist, and its #anchor must be a heading of the target file (or
of the file itself for a bare #anchor), by GitHub's rule: lowercase, spaces
to '-', punctuation other than '-' and '_' dropped, a repeated heading gets
-1, -2, ...  Prints each broken link as FILE:LINE: ... and exits 1 if any.
"""
import os
import re
import sys

LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")


def lines_outside_code(text, keep_code_spans=False):
    """(line number, line) for lines outside fenced blocks; inline code is
    blanked unless keep_code_spans (headings keep it: it is in their anchor)."""
    fenced = False
    for n, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield n, line if keep_code_spans else re.sub(r"`[^`]*`", lambda m: " " * len(m.group(0)), line)


def slug(heading):
    """GitHub's anchor for a heading's text."""
    text = re.sub(r"`([^`]*)`", r"\1", heading)          # code spans keep their text
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links keep their text
    text = re.sub(r"<[^>]+>", "", text)                  # inline HTML goes
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)                 # punctuation goes, '-' and '_' stay
    return text.replace(" ", "-")


def anchors(path, cache={}):
    if path not in cache:
        seen = {}
        found = set()
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for _, line in lines_outside_code(text, keep_code_spans=True):
            m = HEADING.match(line)
            if not m:
                continue
            s = slug(m.group(2))
            if s in seen:
                seen[s] += 1
                found.add(f"{s}-{seen[s]}")
            else:
                seen[s] = 0
                found.add(s)
        cache[path] = found
    return cache[path]


def check_file(path):
    errors = []
    with open(path, encoding="utf-8") as f:
        text = f.read()
    for n, line in lines_outside_code(text):
        for m in LINK.finditer(line):
            target = m.group(1)
            if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target):
                continue  # https:, mailto:, ...
            file_part, _, anchor = target.partition("#")
            dest = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) if file_part else path
            if not os.path.exists(dest):
                errors.append(f"{path}:{n}: {target}: no such file {dest}")
                continue
            if anchor and dest.endswith(".md") and anchor not in anchors(dest):
                errors.append(f"{path}:{n}: {target}: no heading '#{anchor}' in {dest}")
    return errors


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    os.chdir(argv[1])
    errors = []
    checked = 0
    for path in argv[2:]:
        errors += check_file(path)
        checked += 1
    for e in errors:
        print(e)
    print(f"{checked} files, {len(errors)} broken link(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
