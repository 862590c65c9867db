#!/usr/bin/env bash
# Build Murmur's container images; called by the targets in mk/images.mk.
#
#   images/build.sh all [NAME..]    base, stage, build, load and sizes: `make images`
#   images/build.sh base            the local Debian and Python bases (buildah only)
#   images/build.sh stage           wheels and jars into images/.stage (the build inputs)
#   images/build.sh build [NAME..]  every image (or NAME..), tagged NAME:$IMAGE_TAG
#   images/build.sh load [NAME..]   put the images into the cluster that is there
#   images/build.sh sizes [NAME..]  a table of the images' sizes
#   images/build.sh tag             the tag the images get
#
# Environment: IMAGE_TAG, IMAGE_ENGINE (docker|buildah), IMAGE_SOURCE, IMAGE_ARCH,
# BUILDAH_FLAGS (global buildah options, e.g. --root/--runroot for another store),
# MURMUR_CACHE_HOME, KIND_CLUSTER, MINIKUBE_PROFILE, MURMUR_K8S_SOCKET.
#
# With a Docker engine (`docker info` answers) Docker builds from the public bases
# (python:3.11-slim-bookworm, debian:bookworm-slim). Without one, buildah builds from local
# bases: a Debian made by debootstrap (cached outside the clone, so every clone on the
# machine reuses it) and a Python base on top of it. Nothing inside a build downloads over
# https: the host stages wheels and jars into the context; apt inside a build uses plain http.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

CACHE="${MURMUR_CACHE:-$REPO/.cache}"
CACHE_HOME="${MURMUR_CACHE_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/murmur}"
BASE_CACHE="$CACHE_HOME/images"
STAGE="$REPO/images/.stage"
ARCHIVES="$REPO/var/images"
PY="${PY:-$REPO/.venv/bin/python}"

DEBIAN_SUITE=bookworm
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# Bump when the recipe of the Debian base changes: it is part of the cache key.
BASE_RECIPE=2
BASE_DEBIAN_LOCAL="localhost/murmur-base-debian:$DEBIAN_SUITE"
BASE_PYTHON_LOCAL="localhost/murmur-base-python:$DEBIAN_SUITE"

PYTHON_IMAGES=(murmur-users murmur-timeline murmur-fanout murmur-gateway)
STORE_IMAGES=(murmur-edge murmur-postgres murmur-redis murmur-kafka murmur-cassandra)
ALL_IMAGES=("${PYTHON_IMAGES[@]}" "${STORE_IMAGES[@]}")

log() { printf '  images %-18s %s\n' "$1" "$2"; }
die() { echo "images: $*" >&2; exit 1; }
sha() { cat "$@" | sha256sum | cut -c1-16; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

# The image tag: the commit, plus -dirty when the work tree has changes (contract).
image_tag() {
  if [ -n "${IMAGE_TAG:-}" ]; then echo "$IMAGE_TAG"; return; fi
  local tag
  tag="$(git rev-parse --short=12 HEAD 2>/dev/null || echo dev)"
  [ -z "$(git status --porcelain 2>/dev/null)" ] || tag="$tag-dirty"
  echo "$tag"
}

# docker when an engine answers, else buildah.
engine() {
  if [ -n "${IMAGE_ENGINE:-}" ]; then echo "$IMAGE_ENGINE"; return; fi
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then echo docker; else echo buildah; fi
}

# Install buildah/debootstrap with apt when missing, as local/install.sh installs things.
need_tools() {
  local need=()
  command -v buildah >/dev/null || need+=(buildah)
  command -v debootstrap >/dev/null || need+=(debootstrap)
  [ ${#need[@]} -eq 0 ] && return
  [ "$(id -u)" = 0 ] || die "installing ${need[*]} needs root (or install them yourself)"
  log apt "${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
}

# buildah with the project's global options (BUILDAH_FLAGS, e.g. --root/--runroot).
bah() { buildah ${BUILDAH_FLAGS:-} "$@"; }

# --- bases (buildah only) ------------------------------------------------------------------

dpkg_excludes() {
  # What debian:bookworm-slim leaves out too: docs, man pages, translations.
  cat <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
EOF
}

# A rootfs tar of Debian minbase, made once per key (recipe, suite, arch, debootstrap
# version) and kept in $BASE_CACHE: debootstrap takes minutes, a second clone skips it.
debian_rootfs_tar() {
  local arch key tar root
  arch="$(dpkg --print-architecture)"
  key="$(printf '%s\n' "$BASE_RECIPE" "$DEBIAN_SUITE" minbase "$arch" \
         "$(debootstrap --version 2>/dev/null)" "$(dpkg_excludes)" | sha256sum | cut -c1-16)"
  tar="$BASE_CACHE/debian-$DEBIAN_SUITE-minbase-$arch-$key.tar"
  if [ -s "$tar" ]; then echo "$tar"; return; fi
  mkdir -p "$BASE_CACHE"
  root="$(mktemp -d "$BASE_CACHE/rootfs.XXXXXX")"
  log base-debian "debootstrap --variant=minbase $DEBIAN_SUITE (one-off, a few minutes)" >&2
  local t0; t0="$(now)"
  debootstrap --variant=minbase --arch="$arch" "$DEBIAN_SUITE" "$root" "$DEBIAN_MIRROR" \
    >"$root.log" 2>&1 || { tail -20 "$root.log" >&2; rm -rf "$root"; die "debootstrap failed"; }
  mkdir -p "$root/etc/dpkg/dpkg.cfg.d"
  dpkg_excludes >"$root/etc/dpkg/dpkg.cfg.d/murmur-slim"
  # Same sources as debian:bookworm-slim (plain http: no CA needed inside a build).
  rm -f "$root/etc/apt/sources.list"
  cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: http://deb.debian.org/debian
Suites: $DEBIAN_SUITE $DEBIAN_SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: $DEBIAN_SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  cat >"$root/etc/apt/apt.conf.d/90murmur" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
EOF
  # Nothing of the build host or of debootstrap's downloads stays in the image.
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/* \
         "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
         "$root"/usr/share/locale/* "$root"/tmp/* "$root"/var/tmp/* \
         "$root/etc/resolv.conf" "$root/etc/hostname"
  : >"$root/etc/machine-id"
  tar -C "$root" --numeric-owner -cf "$tar.tmp" .
  mv "$tar.tmp" "$tar"
  rm -rf "$root" "$root.log"
  log base-debian "rootfs cached in $(since "$t0"): $tar" >&2
  echo "$tar"
}

# The local bases: localhost/murmur-base-debian and localhost/murmur-base-python.
cmd_base() {
  [ "$(engine)" = buildah ] || { log base "Docker pulls the public bases; nothing to build"; return; }
  need_tools
  local tar key c t0
  tar="$(debian_rootfs_tar)"
  key="$(basename "$tar" .tar)"
  if [ "$(bah inspect --type image --format '{{index .ImageAnnotations "org.murmur.base"}}' \
          "$BASE_DEBIAN_LOCAL" 2>/dev/null)" = "$key" ]; then
    log base-debian "present ($BASE_DEBIAN_LOCAL)"
  else
    t0="$(now)"
    c="$(bah from scratch)"
    bah add "$c" "$tar" / >/dev/null
    bah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      --env LANG=C.UTF-8 --cmd '["/bin/bash"]' \
      --annotation "org.murmur.base=$key" \
      --label "org.opencontainers.image.title=murmur-base-debian" \
      --label "org.opencontainers.image.description=Debian $DEBIAN_SUITE minbase (debootstrap)" \
      "$c"
    bah commit -q --rm "$c" "$BASE_DEBIAN_LOCAL" >/dev/null
    log base-debian "built in $(since "$t0") ($BASE_DEBIAN_LOCAL)"
  fi
  t0="$(now)"
  mkdir -p "$ARCHIVES/logs"
  bah bud --network host --layers -f images/base-python/Dockerfile \
    --build-arg "BASE_DEBIAN=$BASE_DEBIAN_LOCAL" -t "$BASE_PYTHON_LOCAL" images/base-python \
    >"$ARCHIVES/logs/base-python.log" 2>&1 \
    || { tail -30 "$ARCHIVES/logs/base-python.log" >&2; die "base-python: see $ARCHIVES/logs/base-python.log"; }
  log base-python "ready in $(since "$t0") ($BASE_PYTHON_LOCAL)"
}

# --- build inputs staged into the context ---------------------------------------------------

python_for_pip() { if [ -x "$PY" ]; then echo "$PY"; else echo python3; fi; }

# Wheels of the runtime pins for the images' platform (Linux, CPython 3.11, the target
# architecture), whatever the host is: binary wheels only, so no image needs a compiler.
stage_wheels() {
  local arch plat key dest="$STAGE/wheels"
  arch="${IMAGE_ARCH:-$(uname -m)}"
  case "$arch" in amd64) arch=x86_64 ;; arm64) arch=aarch64 ;; esac
  # Bookworm's glibc is 2.36: a wheel for any manylinux up to it runs there. pip does not
  # expand a --platform to the older tags itself, so every one is named.
  local platforms=() minor
  for minor in $(seq 36 -1 17); do platforms+=(--platform "manylinux_2_${minor}_$arch"); done
  platforms+=(--platform "manylinux2014_$arch")
  plat="manylinux_2_36_$arch"
  # Python 3.11.2 is bookworm's (the oldest 3.11 the images get): its environment markers
  # pull in the most (e.g. async-timeout below 3.11.3); a newer 3.11 ignores the extras.
  key="$(sha services/requirements.txt)-$plat-cp3112"
  if [ "$(cat "$dest/.key" 2>/dev/null)" = "$key" ]; then log wheels "present"; return; fi
  log wheels "pip download for $plat, CPython 3.11"
  rm -rf "$dest"; mkdir -p "$dest"
  "$(python_for_pip)" -m pip download -q --disable-pip-version-check \
    --cache-dir "$CACHE/pip" --dest "$dest" --only-binary=:all: \
    "${platforms[@]}" --python-version 3.11.2 \
    --implementation cp --abi cp311 --abi abi3 --abi none \
    -r services/requirements.txt
  echo "$key" >"$dest/.key"
}

# The Kafka and Cassandra jars, resolved from Maven Central exactly as local/install.sh
# does (same poms, same cache), then hard-linked into the context.
stage_jars() {
  local server pom jars want dest
  for server in kafka cassandra; do
    pom="local/jvm/$server/pom.xml"
    jars="$CACHE/jars/$server"
    want="$(sha "$pom")"
    if [ "$(cat "$jars/.pom" 2>/dev/null)" != "$want" ]; then
      command -v mvn >/dev/null || die "Maven is missing: run \`make install\` first"
      log "$server" "resolving jars from Maven Central"
      rm -rf "$jars"
      mvn -q -B -Dmaven.repo.local="$CACHE/m2" -f "$pom" dependency:copy-dependencies \
        -DoutputDirectory="$jars" -DincludeScope=runtime
      echo "$want" >"$jars/.pom"
    fi
    dest="$STAGE/jars/$server"
    if [ "$(cat "$dest/.pom" 2>/dev/null)" = "$want" ]; then log "$server" "jars present"; continue; fi
    rm -rf "$dest"; mkdir -p "$dest"
    cp -al "$jars/." "$dest/" 2>/dev/null || cp -a "$jars/." "$dest/"
    log "$server" "$(find "$dest" -name '*.jar' | wc -l) jars staged"
  done
}

cmd_stage() {
  mkdir -p "$STAGE"
  stage_wheels
  stage_jars
}

# --- images ---------------------------------------------------------------------------------

ref_of() {  # the reference an image is tagged with by the current engine
  if [ "$(engine)" = docker ]; then echo "$1:$(image_tag)"; else echo "localhost/$1:$(image_tag)"; fi
}

revision() {
  local rev
  rev="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
  [ -z "$(git status --porcelain 2>/dev/null)" ] || rev="$rev-dirty"
  echo "$rev"
}

source_url() {
  local url="${IMAGE_SOURCE:-$(git config --get remote.origin.url 2>/dev/null || true)}"
  url="${url%.git}"
  case "$url" in git@*:*) url="${url#git@}"; url="https://${url/://}" ;; esac
  echo "${url:-unknown}"
}

names_or_all() { if [ $# -gt 0 ]; then echo "$@"; else echo "${ALL_IMAGES[@]}"; fi; }

# A digest of everything an image is built from: its Dockerfile, the files its COPY lines
# take from the context (as .dockerignore sees them), the bases and the build arguments. An
# image built from the same digest is up to date: a warm run skips even buildah's cache walk.
inputs_digest() {
  local name="$1" dockerfile="images/$1/Dockerfile" sources
  # shellcheck disable=SC2016
  sources="$(awk '/^COPY / && !/--from=/ { for (i = 2; i < NF; i++) print $i }' "$dockerfile")"
  {
    cat "$dockerfile"
    # shellcheck disable=SC2086
    find $sources -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 | sort -z \
      | xargs -0 sha256sum
    printf '%s\n' "$@"
    if [ "$(engine)" = buildah ]; then
      image_id "$BASE_DEBIAN_LOCAL"; image_id "$BASE_PYTHON_LOCAL"
    fi
  } | sha256sum | cut -c1-32
}

image_id() {
  if [ "$(engine)" = docker ]; then docker image inspect -f '{{.Id}}' "$1" 2>/dev/null || true
  else bah images --no-trunc --format '{{.ID}}' "$1" 2>/dev/null | awk 'NR == 1'; fi
}

cmd_build() {
  local eng tag rev src name ref t0 out
  eng="$(engine)"; tag="$(image_tag)"; rev="$(revision)"; src="$(source_url)"
  [ -d "$STAGE/wheels" ] && [ -d "$STAGE/jars" ] || cmd_stage
  # buildah would try to pull a missing local base from a registry: build it instead.
  if [ "$eng" = buildah ] && ! { bah inspect --type image "$BASE_DEBIAN_LOCAL" &&
       bah inspect --type image "$BASE_PYTHON_LOCAL"; } >/dev/null 2>&1; then
    cmd_base
  fi
  mkdir -p "$ARCHIVES/logs"
  log "$eng" "tag $tag"
  for name in $(names_or_all "$@"); do
    [ -f "images/$name/Dockerfile" ] || die "no images/$name/Dockerfile"
    ref="$(ref_of "$name")"
    out="$ARCHIVES/logs/$name.log"
    t0="$(now)"
    printf '  images %-18s building %s ... ' "$name" "$ref"
    local args=(--build-arg "REVISION=$rev" --build-arg "SOURCE=$src" -f "images/$name/Dockerfile" -t "$ref")
    local digest stamp="$ARCHIVES/$name.inputs"
    digest="$(inputs_digest "$name" "${args[@]}")"
    if [ -n "$(image_id "$ref")" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$digest $(image_id "$ref")" ]; then
      echo "up to date"
      continue
    fi
    if [ "$eng" = docker ]; then
      docker build "${args[@]}" . >"$out" 2>&1 || { echo FAILED; tail -30 "$out" >&2; die "$name: see $out"; }
    else
      bah bud --network host --layers --format docker \
        --build-arg "BASE_PYTHON=$BASE_PYTHON_LOCAL" --build-arg "BASE_DEBIAN=$BASE_DEBIAN_LOCAL" \
        "${args[@]}" . >"$out" 2>&1 || { echo FAILED; tail -30 "$out" >&2; die "$name: see $out"; }
    fi
    echo "$digest $(image_id "$ref")" >"$stamp"
    echo "done in $(since "$t0")"
  done
}

# --- loading into a cluster -----------------------------------------------------------------

# The local cluster's containerd socket, if that cluster is running.
cluster_socket() {
  local s
  for s in ${MURMUR_K8S_SOCKET:-} "$REPO/var/k8s/run/containerd.sock" \
           "${MURMUR_K8S_RUN:-/run/murmur-k8s}/containerd.sock"; do
    [ -S "$s" ] && { echo "$s"; return; }
  done
  return 0
}

ctr_k8s() { ctr --address "$SOCKET" --namespace k8s.io "$@"; }

# The config digest of `ref` in the cluster's containerd ('' when absent).
cluster_config_digest() {
  local manifest
  manifest="$(ctr_k8s images ls "name==$1" 2>/dev/null | awk 'NR == 2 { print $3 }')"
  [ -n "$manifest" ] || return 0
  ctr_k8s content get "$manifest" 2>/dev/null \
    | "$(python_for_pip)" -c 'import json, sys; print(json.load(sys.stdin).get("config", {}).get("digest", ""))' \
    2>/dev/null || true
}

# The config digest of an image archive (docker-archive: manifest.json names the config).
archive_config_digest() {
  tar -xOf "$1" manifest.json | "$(python_for_pip)" -c '
import json, sys
config = json.load(sys.stdin)[0]["Config"]
print(config if config.startswith("sha256:") else "sha256:" + config.removesuffix(".json"))'
}

# Import archives into the local cluster: through k8s/local/clusterctl.py when it is
# there (the one way the cluster loads images), else with ctr directly.
import_archives() {
  if [ -f k8s/local/clusterctl.py ] && [ -x "$PY" ]; then
    "$PY" k8s/local/clusterctl.py load "$@"
  else
    local a
    for a in "$@"; do ctr_k8s images import "$a" >/dev/null; done
  fi
}

load_local_cluster() {
  local name ref id archive want have t0 todo=()
  mkdir -p "$ARCHIVES"
  for name in "$@"; do
    ref="$(ref_of "$name")"
    id="$(bah images --no-trunc --format '{{.ID}}' "$ref" | awk 'NR == 1')"
    [ -n "$id" ] || die "$ref is not built (make images-build)"
    archive="$ARCHIVES/$name.tar"
    # The archive of this exact image is kept: a warm run neither exports nor imports.
    if [ "$(cat "$archive.id" 2>/dev/null)" != "$id $ref" ] || [ ! -s "$archive" ]; then
      t0="$(now)"
      rm -f "$archive" "$archive.id"
      bah push -q "$ref" "docker-archive:$archive:$ref" >/dev/null
      echo "$id $ref" >"$archive.id"
      log "$name" "exported in $(since "$t0") ($(du -h "$archive" | cut -f1))"
    fi
    want="$(archive_config_digest "$archive")"
    have="$(cluster_config_digest "$ref")"
    if [ -n "$want" ] && [ "$want" = "$have" ]; then
      log "$name" "already in the cluster"
    else
      todo+=("$archive")
    fi
  done
  if [ ${#todo[@]} -gt 0 ]; then
    t0="$(now)"
    import_archives "${todo[@]}"
    log cluster "${#todo[@]} image(s) imported in $(since "$t0")"
  fi
}

cmd_load() {
  local names eng name
  names="$(names_or_all "$@")"
  eng="$(engine)"
  SOCKET="$(cluster_socket)"
  if [ -n "$SOCKET" ] && [ "$eng" = buildah ]; then
    # shellcheck disable=SC2086
    load_local_cluster $names
  elif [ "$eng" = docker ]; then
    for name in $names; do
      if [ -n "${KIND_CLUSTER:-}" ]; then
        kind load docker-image "$(ref_of "$name")" --name "$KIND_CLUSTER"
      elif [ -n "${MINIKUBE_PROFILE:-}" ]; then
        minikube -p "$MINIKUBE_PROFILE" image load "$(ref_of "$name")"
      fi
    done
    if [ -z "${KIND_CLUSTER:-}${MINIKUBE_PROFILE:-}" ]; then
      echo "  load the images into your cluster (or set KIND_CLUSTER / MINIKUBE_PROFILE):"
      echo "    kind load docker-image$(for n in $names; do printf ' %s' "$(ref_of "$n")"; done) [--name CLUSTER]"
      echo "    minikube image load$(for n in $names; do printf ' %s' "$(ref_of "$n")"; done) [-p PROFILE]"
    fi
  else
    log load "no local cluster running (make cluster): nothing to load"
  fi
}

cmd_sizes() {
  local name ref size eng
  eng="$(engine)"
  printf '  %-18s %-34s %10s\n' IMAGE TAG SIZE
  for name in $(names_or_all "$@"); do
    ref="$(ref_of "$name")"
    if [ "$eng" = docker ]; then
      size="$(docker image inspect -f '{{.Size}}' "$ref" 2>/dev/null | awk '{ printf "%.0f MB", $1 / 1e6 }')"
    else
      size="$(bah images --format '{{.Size}}' "$ref" 2>/dev/null | awk 'NR == 1')"
    fi
    printf '  %-18s %-34s %10s\n' "$name" "${ref#*:}" "${size:-(not built)}"
  done
}

cmd_all() {
  local t0; t0="$(now)"
  cmd_base
  cmd_stage
  cmd_build "$@"
  cmd_load "$@"
  cmd_sizes "$@"
  log done "in $(since "$t0"); tag $(image_tag)"
}

main() {
  local cmd="${1:-}"
  shift || true
  # Asked once: `docker info` is slow to fail when a CLI has no engine behind it.
  IMAGE_ENGINE="$(engine)"
  case "$cmd" in
    all) cmd_all "$@" ;;
    base) cmd_base "$@" ;;
    stage) cmd_stage "$@" ;;
    build) cmd_build "$@" ;;
    load) cmd_load "$@" ;;
    sizes) cmd_sizes "$@" ;;
    tag) image_tag ;;
    *) die "usage: images/build.sh all|base|stage|build|load|sizes|tag [NAME..]" ;;
  esac
}

# On one line with exit: an edit of this file while it runs cannot run anything more.
main "$@"; exit $?
