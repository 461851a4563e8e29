#!/usr/bin/env bash
# Instructions per operation of micro-benchmark stages (native/src/micro-bench.c), counted by
# valgrind's callgrind: repeatable on a loaded machine, unlike nanoseconds.
#   bash scripts/count-instructions.sh [STAGE...]     (default: split coalesce coalesce-trusted single single-trusted)
# Built with the addon's flags (-O2); each stage runs N and 2N times, the difference / N is
# what one operation costs (setup cancels out).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is missing: bash scripts/ensure-deps.sh" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cc=${CC:-cc}
$cc -std=gnu11 -O2 -D_GNU_SOURCE -Inative/src -o "$out/count" bench/micro/count-main.c native/src/micro-bench.c \
  native/src/gro.c native/src/gso.c native/src/csum.c native/src/route-table.c native/src/aead.c native/src/aead-direct.c -lcrypto
stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=(split coalesce coalesce-trusted single single-trusted)
n=200
ir() { valgrind --tool=callgrind --callgrind-out-file="$out/cg" "$out/count" "$1" "$2" 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'; }
echo "| stage | instructions per op |"
echo "|---|---:|"
for s in "${stages[@]}"; do
  a=$(ir "$s" $n) b=$(ir "$s" $((2 * n)))
  echo "| $s | $(( (b - a) / n )) |"
done
