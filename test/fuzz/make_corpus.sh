#!/usr/bin/env bash
# make_corpus.sh -- rewrite the seed corpora of the fuzz targets.
#
#   test/fuzz/make_corpus.sh [BUILDDIR]
#
# Builds gen_corpus in BUILDDIR (default: build) and replaces the seeds in
# test/fuzz/corpus_open and test/fuzz/corpus_ops with fresh ones.  Files
# that are not seeds (findings, named finding-*, and anything
# a fuzzer added) are left alone.  The arena id is random, so every run
# writes different bytes of the same shapes; commit the result.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/build}
if [ ! -d "$build" ]; then
    meson setup "$build" "$root" >/dev/null
fi
ninja -C "$build" test/fuzz/gen_corpus >/dev/null
mkdir -p "$here/corpus_open" "$here/corpus_ops"
# The seeds gen_corpus writes (keep this list in step with gen_corpus.c).
rm -f "$here"/corpus_open/{fresh,blocks,bins,log}_*.arena "$here"/corpus_open/{fresh,blocks,bins,log}_*.fm \
      "$here"/corpus_open/{empty,zero_4k,header_only,magic_only}.bin \
      "$here"/corpus_ops/{each_op,small_churn,tree_churn,grow_trim,realloc_chain,memalign,crash_linked,bad_frees,use_after_free}.bin \
      "$here"/corpus_ops/random_*.bin
"$build/test/fuzz/gen_corpus" "$here/corpus_open" "$here/corpus_ops"
