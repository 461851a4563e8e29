#!/usr/bin/env bash
# Lays out tulle's runtime from a built checkout (npm ci done: dist/ and the native addon
# built): exactly what `npm pack` ships, its production dependencies from the lockfile, and the
# built addon. The Containerfile runs it in its build stage; test/unit/image-recipe.test.ts
# runs it here (offline, from the npm cache) and starts `tulle --version` from the result.
#
#   deploy/image/assemble.sh SRC_DIR DEST_DIR
set -euo pipefail
src=${1:?usage: assemble.sh SRC_DIR DEST_DIR}
dest=${2:?usage: assemble.sh SRC_DIR DEST_DIR}
addon="$src/native/build/Release/tulle.node"
[[ -f "$addon" ]] || { echo "assemble.sh: $addon is missing: run npm ci in $src first" >&2; exit 1; }
[[ -f "$src/dist/src/cli/main.js" ]] || { echo "assemble.sh: $src/dist is not built: run npm run build in $src first" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# --ignore-scripts: dist/ is built already (prepare would need the dev dependencies again)
(cd "$src" && npm pack --ignore-scripts --pack-destination "$tmp" >/dev/null)
mkdir -p "$dest"
tar -xzf "$tmp"/tulle-*.tgz -C "$dest" --strip-components=1 --no-same-owner
# npm pack leaves the lockfile out; the runtime gets the versions the tests ran with
cp "$src/package-lock.json" "$dest/"
# no scripts: the package's own install script would rebuild the addon, which is copied below
(cd "$dest" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund >/dev/null)
mkdir -p "$dest/native/build/Release"
cp "$addon" "$dest/native/build/Release/tulle.node"
