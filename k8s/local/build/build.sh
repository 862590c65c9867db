#!/usr/bin/env bash
# Build the local cluster's binaries from the Go module proxy, each once per version.
#
# Every binary lands in "$MURMUR_CACHE_HOME/k8s/bin/<key>/" where <key> is derived from the
# wrapper module that built it (its go.mod, go.sum and sources), so a second clone on the same
# machine, or a second `make cluster`, reuses it and a version bump rebuilds only what changed.
#   build.sh [component...]     components: kubernetes helm coredns kube-router local-path pause
# Prints the bin folder of each component on stdout as `name=<dir>` lines.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE_HOME="${MURMUR_CACHE_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/murmur}"
BIN_ROOT="$CACHE_HOME/k8s/bin"
export GOCACHE="${GOCACHE_OVERRIDE:-$CACHE_HOME/go/build}"
export GOMODCACHE="${GOMODCACHE_OVERRIDE:-$CACHE_HOME/go/mod}"
export GOFLAGS=-modcacherw CGO_ENABLED=0 GOTOOLCHAIN=local
export PATH="$PATH:/usr/local/go/bin"

K8S_VERSION=v1.34.4
HELM_VERSION=v3.22.0

log() { printf '  build %-12s %s\n' "$1" "$2" >&2; }
key_of() { (cd "$HERE/$1" && cat go.mod go.sum *.go 2>/dev/null; echo "${2:-}") | sha256sum | cut -c1-12; }

# build_module NAME DIR EXTRA_KEY LDFLAGS PKG... : go build PKGs inside wrapper module DIR.
build_module() {
  local name=$1 dir=$2 extra=$3 ldflags=$4; shift 4
  local out="$BIN_ROOT/$name-$(key_of "$dir" "$extra")"
  if [ -f "$out/.complete" ]; then
    log "$name" "cached ($out)"
  elif [ -n "${MURMUR_BUILD_CACHED_ONLY:-}" ]; then
    return 1
  else
    log "$name" "building $* (one-off; cached afterwards)"
    local start=$SECONDS tmp="$out.tmp.$$"
    rm -rf "$tmp" && mkdir -p "$tmp"
    (cd "$HERE/$dir" && go build -trimpath -o "$tmp/" -ldflags "-s -w $ldflags" "$@")
    touch "$tmp/.complete"
    rm -rf "$out" && mv "$tmp" "$out"
    log "$name" "built in $((SECONDS - start))s"
  fi
  echo "$name=$out"
}

version_ldflags() {
  local v=${K8S_VERSION#v} flags="" pkg
  for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    flags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=${v%%.*}"
    flags+=" -X $pkg.gitMinor=$(echo "$v" | cut -d. -f2) -X $pkg.gitTreeState=clean"
    flags+=" -X $pkg.gitCommit=0000000000000000000000000000000000000000"
    flags+=" -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  echo "$flags"
}

build_one() {
  case $1 in
    kubernetes)
      build_module kubernetes kubernetes "$K8S_VERSION" "$(version_ldflags)" \
        k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
        k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet \
        k8s.io/kubernetes/cmd/kube-proxy k8s.io/kubernetes/cmd/kubectl ;;
    helm)
      # As helm's own Makefile stamps them: the version, and the Kubernetes version that
      # `helm template`/`lint` assume without a cluster (that of its client-go, v0.37).
      local flags="-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" pkg
      for pkg in pkg/lint/rules pkg/chartutil; do
        flags+=" -X helm.sh/helm/v3/$pkg.k8sVersionMajor=1 -X helm.sh/helm/v3/$pkg.k8sVersionMinor=37"
      done
      build_module helm helm "$HELM_VERSION $flags" "$flags" helm.sh/helm/v3/cmd/helm ;;
    coredns)     build_module coredns coredns "" "" . ;;
    kube-router) build_module kube-router kube-router "" "" github.com/cloudnativelabs/kube-router/v2/cmd/kube-router ;;
    local-path)  build_module local-path local-path "" "" github.com/rancher/local-path-provisioner ;;
    pause)       build_module pause pause "" "" . ;;
    *) echo "unknown component $1" >&2; exit 2 ;;
  esac
}

[ $# -gt 0 ] || set -- kubernetes helm coredns kube-router local-path pause
for c in "$@"; do build_one "$c"; done
