#!/usr/bin/env python3
"""Sum meson test results over build directories and print the closing line.

Every `meson test` run writes meson-logs/<logbase>.json (one JSON object per
test); runs in the same build directory use distinct --logbase names, so
each file here is one run.  Prints per-run counts, then

    N passed, N failed, N skipped
"""
import glob
import json
import os
import sys

PASS = {"OK", "EXPECTEDFAIL"}
SKIP = {"SKIP"}


def main(dirs):
    total = {"passed": 0, "failed": 0, "skipped": 0}
    for d in dirs:
        for path in sorted(glob.glob(os.path.join(d, "meson-logs", "*.json"))):
            counts = {"passed": 0, "failed": 0, "skipped": 0}
            failed_names = []
            with open(path) as f:
                for line in f:
                    line = line.strip()
                    if not line:
                        continue
                    try:
                        t = json.loads(line)
                    except ValueError:
                        continue
                    r = t.get("result", "")
                    if r in PASS:
                        counts["passed"] += 1
                    elif r in SKIP:
                        counts["skipped"] += 1
                    else:
                        counts["failed"] += 1
                        failed_names.append(t.get("name", "?"))
            if not any(counts.values()):
                continue
            run = os.path.relpath(path)
            print(f"  {run}: {counts['passed']} passed, {counts['failed']} failed, "
                  f"{counts['skipped']} skipped" +
                  (f"  (failed: {', '.join(failed_names)})" if failed_names else ""))
            for k in total:
                total[k] += counts[k]
    print(f"{total['passed']} passed, {total['failed']} failed, {total['skipped']} skipped")
    return 1 if total["failed"] or not total["passed"] else 0


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--sum"]
    sys.exit(main(args))
