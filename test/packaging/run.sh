#!/usr/bin/env bash
# run.sh SCRIPT SRC [--skip] -- run one packaging script, or skip it (exit
# 77) in a sanitizer build or when a tool it needs is missing.
script=$1 src=$2
if [ "${3:-}" = --skip ]; then
    echo "skipped: a sanitizer build (the packaging checks make their own builds)"
    exit 77
fi
for tool in meson ninja cmake pkg-config readelf nm man make c++ cc scdoc python3; do
    command -v "$tool" >/dev/null || { echo "skipped: no $tool (run.sh installs it)"; exit 77; }
done
exec bash "$script" "$src"
