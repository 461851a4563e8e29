#!/usr/bin/env bash
# The native-heavy tests against the sanitized addon (scripts/build-sanitized-addon.sh): offload
# stages and loops, hostile input, encrypted mode's native parts, a plain mesh. Every node process
# (vitest workers, daemons spawned from bin/tulle) loads native/build-sanitize/tulle.node through
# TULLE_SANITIZE=1 with the ASan runtime preloaded. Fails on a failed test or on any sanitizer
# report (reports go to a log directory, since daemons' stderr is the tests').
#   bash scripts/sanitize-tests.sh [test files...]
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/build-sanitized-addon.sh || exit 1
logs=$(mktemp -d /tmp/tulle-sanitize-XXXXXX)
files=("$@")
if [ ${#files[@]} -eq 0 ]; then
  files=(test/offload test/integration/hostile-input.test.ts test/integration/plain-mesh.test.ts
    test/wireguard/native-crypto.test.ts test/wireguard/staging.test.ts test/wireguard/roaming.test.ts
    test/wireguard/encrypted-mesh.test.ts)
fi
export TULLE_SANITIZE=1
export LD_PRELOAD="$(gcc -print-file-name=libasan.so)${LD_PRELOAD:+:$LD_PRELOAD}"
# node is not instrumented: no leak check (V8 and libuv keep memory to exit), no ODR noise
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:detect_odr_violation=0:log_path=$logs/asan"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$logs/ubsan"
npx vitest run "${files[@]}"
status=$?
if compgen -G "$logs/*" >/dev/null; then
  echo "sanitizer reports:" >&2
  for f in "$logs"/*; do echo "== $f" >&2; head -60 "$f" >&2; done
  status=1
fi
rm -rf "$logs"
exit $status
