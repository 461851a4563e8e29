#!/usr/bin/env bash
# Instructions per seal and open of a 1424-byte and a 96-byte message (micro-bench stages), for each AEAD path (aead.h),
# counted by callgrind inside node (the direct path exists only there: it uses node's OpenSSL).
# Repeatable on a loaded machine. valgrind does not run AVX-512, so OpenSSL and tulle take their
# AVX2 code here; the counts compare the paths, they are not the cycles of the real run.
#   bash scripts/count-aead-instructions.sh      (after npx tsc -p tsconfig.json and the addon build)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is missing: bash scripts/ensure-deps.sh" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cat >"$out/run.mjs" <<JS
import { loadAddon } from '$PWD/dist/src/dataplane/native.js';
const a = loadAddon();
a.aeadPath(process.argv[2]);
a.microBench(process.argv[3], Number(process.argv[4]));
JS
n=500
ir() { valgrind --tool=callgrind --toggle-collect=micro_bench --callgrind-out-file="$out/cg" node "$out/run.mjs" "$@" 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'; }
echo "| path | stage | instructions per op |"
echo "|---|---|---:|"
for p in evp direct; do
  for s in seal open seal-small open-small; do
    a=$(ir $p $s $n) b=$(ir $p $s $((2 * n)))
    echo "| $p | $s | $(( (b - a) / n )) |"
  done
done
