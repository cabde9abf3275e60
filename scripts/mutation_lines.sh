#!/usr/bin/env bash
# Writes a patch that marks the equation lines of the mutation-testing targets as added, so that
# `mutmut run --use-patch-file` mutates the equations only (not dataclass fields or messages).
# Usage: bash scripts/mutation_lines.sh > /tmp/equations.patch   (docs/testing.md)
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# file:first-last line of the equations (kernel and step; loss; forward run and adjoint; transfer functions)
for range in cortical_gle/engines/numpy_/dynamics.py:103-193 cortical_gle/engines/numpy_/losses.py:35-51 \
             cortical_gle/engines/numpy_/bptt.py:40-164 cortical_gle/phi.py:40-106; do
    f=${range%%:*}; lines=${range#*:}
    sed "${lines/-/,}d" "$f" > "$tmp/old"
    echo "Index: $f"
    diff -u --label "$f" --label "$f" "$tmp/old" "$f" || true
done
