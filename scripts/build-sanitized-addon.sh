#!/usr/bin/env bash
# Builds the addon with AddressSanitizer and UBSan into native/build-sanitize/tulle.node (the
# normal build in native/build/Release is left alone). Loaded instead of it when TULLE_SANITIZE=1
# (src/dataplane/native.ts); node itself is not instrumented, so the ASan runtime must be preloaded:
#   LD_PRELOAD=$(gcc -print-file-name=libasan.so) ASAN_OPTIONS=detect_leaks=0 TULLE_SANITIZE=1 ...
# scripts/sanitize-tests.sh does all of that. Rebuilds only when a source is newer than the build.
set -euo pipefail
cd "$(dirname "$0")/.."
out=native/build-sanitize/tulle.node
mapfile -t sources < <(node -e 'for (const s of JSON.parse(require("fs").readFileSync("native/binding.gyp", "utf8")).targets[0].sources) console.log("native/" + s)')
if [ -f "$out" ] && [ -z "$(find native/src native/binding.gyp -newer "$out" -print -quit)" ]; then exit 0; fi
mkdir -p native/build-sanitize
echo "building the sanitized addon ($out)" >&2
gcc -std=gnu11 -O1 -g -fno-omit-frame-pointer -fPIC -shared -fsanitize=address,undefined -fno-sanitize-recover=undefined \
  -Wall -Wextra -Wno-unused-parameter -Wno-format-truncation -D_GNU_SOURCE -DNAPI_VERSION=8 -DNODE_GYP_MODULE_NAME=tulle \
  -I/usr/include/node "${sources[@]}" -o "$out.tmp" -lpthread
mv "$out.tmp" "$out"
