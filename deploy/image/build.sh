#!/usr/bin/env bash
# Builds tulle's image from deploy/image/Containerfile with whichever builder this machine has:
# podman, buildah, or docker (with a running engine). The tag is package.json's version, the
# one deploy/kubernetes/*.yml names:
#
#   deploy/image/build.sh [extra builder args...]      → localhost/tulle:<version>
#   IMAGE=registry.example/tulle deploy/image/build.sh → registry.example/tulle:<version>
#   BUILDER=docker deploy/image/build.sh               → use that builder
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
version=$(sed -n 's/^  "version": "\([^"]*\)",$/\1/p' "$root/package.json")
[[ -n "$version" ]] || { echo "build.sh: no version in $root/package.json" >&2; exit 1; }
tag="${IMAGE:-localhost/tulle}:$version"
file="$root/deploy/image/Containerfile"

usable() {
  case "$1" in
    docker) command -v docker >/dev/null && timeout 20 docker info >/dev/null 2>&1 ;;
    *) command -v "$1" >/dev/null ;;
  esac
}

builder=${BUILDER:-}
if [[ -z "$builder" ]]; then
  for b in podman buildah docker; do
    if usable "$b"; then builder=$b; break; fi
  done
fi
if [[ -z "$builder" ]]; then
  why="no podman or buildah on PATH"
  command -v docker >/dev/null && why="$why, and docker cannot reach an engine (docker info failed)" || why="$why, and no docker"
  echo "build.sh: cannot build $tag: $why" >&2
  exit 1
fi
if ! usable "$builder"; then
  echo "build.sh: BUILDER=$builder is not usable here (not on PATH, or no engine)" >&2
  exit 1
fi

echo "build.sh: building $tag with $builder" >&2
case "$builder" in
  buildah) exec buildah build -f "$file" -t "$tag" "$@" "$root" ;;
  *) exec "$builder" build -f "$file" -t "$tag" "$@" "$root" ;;
esac
