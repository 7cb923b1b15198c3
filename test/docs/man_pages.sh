#!/usr/bin/env bash
# man_pages.sh PAGE... -- each page renders with man -l, no groff warning.
set -uo pipefail
rc=0
for page in "$@"; do
    err=$(MANWIDTH=80 MANPAGER=cat man --warnings -l "$page" 2>&1 >/dev/null)
    lines=$(MANWIDTH=80 MANPAGER=cat man -l "$page" 2>/dev/null | wc -l)
    if [ -n "$err" ] || [ "$lines" -lt 10 ]; then
        echo "FAIL $page ($lines lines): $err"
        rc=1
    else
        echo "ok   $page ($lines lines)"
    fi
done
exit $rc
