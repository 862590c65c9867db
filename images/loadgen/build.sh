#!/usr/bin/env bash
# Build murmur-loadgen (`make loadgen-image`): stage the wheels of loadtests/requirements.txt
# for the image's platform, then build with the engine and base images/build.sh uses, and
# tag it like every Murmur image (the commit, -dirty when the work tree has changes).
#   images/loadgen/build.sh            build, print the reference
#   images/loadgen/build.sh archive    ... and write var/images/murmur-loadgen.tar (oci-archive)
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO"
CACHE="${MURMUR_CACHE:-$REPO/.cache}"
PY="${PY:-$REPO/.venv/bin/python}"
STAGE="$REPO/images/.stage/loadgen-wheels"
NAME=murmur-loadgen

tag="${IMAGE_TAG:-$(git rev-parse --short=12 HEAD 2>/dev/null || echo dev)}"
if [ -z "${IMAGE_TAG:-}" ] && [ -n "$(git status --porcelain 2>/dev/null)" ]; then tag="$tag-dirty"; fi
arch="${IMAGE_ARCH:-$(uname -m)}"
case "$arch" in amd64) arch=x86_64 ;; arm64) arch=aarch64 ;; esac

# Binary wheels only, for CPython 3.11 on bookworm's glibc (2.36) and older manylinux tags.
key="$(sha256sum loadtests/requirements.txt | cut -c1-16)-$arch-cp3112"
if [ "$(cat "$STAGE/.key" 2>/dev/null)" != "$key" ]; then
  echo "  loadgen  pip download for $arch, CPython 3.11"
  rm -rf "$STAGE"; mkdir -p "$STAGE"
  platforms=(); for minor in $(seq 36 -1 17); do platforms+=(--platform "manylinux_2_${minor}_$arch"); done
  platforms+=(--platform "manylinux2014_$arch")
  "$PY" -m pip download -q --disable-pip-version-check --cache-dir "$CACHE/pip" --dest "$STAGE" \
    --only-binary=:all: "${platforms[@]}" --python-version 3.11.2 --implementation cp \
    --abi cp311 --abi abi3 --abi none -r loadtests/requirements.txt
  echo "$key" >"$STAGE/.key"
fi

rev="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  docker build -f images/loadgen/Dockerfile --build-arg REVISION="$rev" -t "$NAME:$tag" .
  ref="$NAME:$tag"
else
  base="localhost/murmur-base-python:bookworm"
  buildah inspect --type image "$base" >/dev/null 2>&1 \
    || { echo "loadgen: no $base: run \`make images\` (it builds the local bases) first" >&2; exit 1; }
  buildah bud --network host --layers -f images/loadgen/Dockerfile --build-arg BASE_PYTHON="$base" \
    --build-arg REVISION="$rev" -t "localhost/$NAME:$tag" . >/dev/null
  ref="localhost/$NAME:$tag"
  if [ "${1:-}" = archive ]; then
    mkdir -p var/images
    rm -f "var/images/$NAME.tar"
    buildah push "$ref" "oci-archive:var/images/$NAME.tar:$ref" >/dev/null
    echo "archive var/images/$NAME.tar" >&2
  fi
fi
echo "$ref"
