#!/usr/bin/env bash
# Installs what tulle's tests, demo and benchmark need on a fresh Debian machine, and nothing
# when it is all there already: system packages (apt-get update once, then install) and the
# npm dependencies (which also build the native addon and the TypeScript).
set -euo pipefail
cd "$(dirname "$0")/.."

# command -> Debian package
declare -A NEED=(
  [ip]=iproute2 [ping]=iputils-ping [iperf3]=iperf3 [tcpdump]=tcpdump
  [etcd]=etcd-server [etcdctl]=etcd-client [wireguard-go]=wireguard-go [wg]=wireguard-tools
  [iptables]=iptables [nft]=nftables [openssl]=openssl [nstat]=iproute2 [tc]=iproute2 [renice]=bsdutils [make]=make [g++]=g++ [python3]=python3
  [clang-14]=clang-14 [valgrind]=valgrind [perf]=linux-perf
)
missing=()
for cmd in "${!NEED[@]}"; do command -v "$cmd" >/dev/null 2>&1 || missing+=("${NEED[$cmd]}"); done
[ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
# npm run fuzz: libFuzzer's runtime (Debian ships it apart from clang), and libcrypto to link aead.c
compgen -G '/usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a' >/dev/null || missing+=(libclang-rt-14-dev)
[ -e /usr/include/openssl/evp.h ] && [ -e /usr/lib/x86_64-linux-gnu/libcrypto.so ] || missing+=(libssl-dev)
# the sanitizer build of the addon (TULLE_SANITIZE=1) uses gcc's AddressSanitizer runtime
[ -e "$(gcc -print-file-name=libasan.so 2>/dev/null)" ] || missing+=(libasan8)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "tulle needs root to install: ${missing[*]}" >&2
    exit 1
  fi
  echo "installing system packages: $(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # --no-install-recommends: wireguard-tools would otherwise pull in a kernel image
  apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${missing[@]}" | sort -u) >/dev/null
fi

stamp=node_modules/.tulle-deps
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ] || [ ! -f native/build/Release/tulle.node ]; then
  echo "installing npm dependencies (builds the native addon and the TypeScript)" >&2
  npm ci --no-audit --no-fund >&2
  touch "$stamp"
fi
# type-check everything, tests included (vitest itself does not); test/global-setup.ts builds dist/
npx --no-install tsc -p tsconfig.test.json
