#!/usr/bin/env bash
# Install what the local platform needs, skipping whatever is already there:
#   - PostgreSQL, Redis, nginx (and a JDK 17, Maven, Go if missing) from Debian packages
#   - the pinned Python dependencies into .venv
#   - Apache Kafka, Apache Cassandra and the Zipkin server as jars resolved from Maven Central
#     (local/jvm/*/pom.xml)
#   - Toxiproxy, VictoriaMetrics (single-node) and vmalert via `go install`
# Downloads are cached under .cache/ (git-ignored); a second run downloads nothing.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${MURMUR_CACHE:-$REPO/.cache}"
VENV="${MURMUR_VENV:-$REPO/.venv}"
PYTHON="${PYTHON:-python3}"
TOXIPROXY_VERSION="v2.12.0"
VICTORIAMETRICS_VERSION="v1.151.0"

step() { printf '  install %-12s %s\n' "$1" "$2"; }
sha() { cat "$@" | sha256sum | cut -c1-16; }

# --- Debian packages -------------------------------------------------------------------
need=()
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
command -v redis-server >/dev/null || need+=(redis-server)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v runuser >/dev/null || need+=(util-linux)
java -version 2>&1 | grep -q 'version "17' || [ -x /usr/lib/jvm/java-17-openjdk-amd64/bin/java ] \
  || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || need+=(maven)
command -v go >/dev/null || [ -x /usr/local/go/bin/go ] || need+=(golang-go)
if [ ${#need[@]} -gt 0 ]; then
  step apt "${need[*]}"
  [ "$(id -u)" = 0 ] || { echo "installing ${need[*]} needs root (or install them yourself)" >&2; exit 1; }
  # Keep the packages from starting system-wide services on the stock ports: Murmur runs
  # its own instances on its own ports under its own supervisor.
  policy=/usr/sbin/policy-rc.d
  created_policy=0
  if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; created_policy=1; fi
  mkdir -p /etc/postgresql-common/createcluster.d
  echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/murmur.conf
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  [ "$created_policy" = 1 ] && rm -f "$policy"
else
  step apt "postgresql, redis, nginx, jdk, maven, go: present"
fi

# --- Python virtual environment ---------------------------------------------------------
# requirements.txt includes services/ and chaos/requirements.txt: hash all three.
want="$(sha "$REPO/requirements.txt" "$REPO/services/requirements.txt" "$REPO/chaos/requirements.txt")"
if [ -x "$VENV/bin/python" ] && [ "$(cat "$VENV/.requirements" 2>/dev/null)" = "$want" ]; then
  step python "requirements: present"
else
  step python "requirements.txt into .venv"
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check --cache-dir "$CACHE/pip" -r "$REPO/requirements.txt"
  echo "$want" >"$VENV/.requirements"
fi

# --- Kafka, Cassandra and Zipkin jars from Maven Central ----------------------------------------
for server in kafka cassandra zipkin; do
  pom="$REPO/local/jvm/$server/pom.xml"
  dest="$CACHE/jars/$server"
  want="$(sha "$pom")"
  if [ "$(cat "$dest/.pom" 2>/dev/null)" = "$want" ]; then
    step "$server" "jars: present"
    continue
  fi
  step "$server" "resolving jars from Maven Central"
  rm -rf "$dest"
  mvn -q -B -Dmaven.repo.local="$CACHE/m2" -f "$pom" dependency:copy-dependencies \
    -DoutputDirectory="$dest" -DincludeScope=runtime
  echo "$want" >"$dest/.pom"
done

# --- Tools built from the Go module proxy -------------------------------------------------
# go_tool <step> <stamp> <version> <binary=package>...: `go install` each package at the
# version into .cache/bin under the binary's name, unless the stamp says that version is
# there already.
go_tool() {
  local name="$1" stamp="$CACHE/bin/.$2" version="$3"; shift 3
  local pair present=1
  for pair in "$@"; do [ -x "$CACHE/bin/${pair%%=*}" ] || present=0; done
  if [ "$present" = 1 ] && [ "$(cat "$stamp" 2>/dev/null)" = "$version" ]; then
    step "$name" "$version: present"
    return
  fi
  step "$name" "go install $version"
  export PATH="$PATH:/usr/local/go/bin"
  local gobin="$CACHE/go/bin" started=$SECONDS packages=()
  mkdir -p "$gobin" "$CACHE/bin"
  for pair in "$@"; do packages+=("${pair#*=}@$version"); done
  GOBIN="$gobin" GOMODCACHE="$CACHE/go/mod" GOCACHE="$CACHE/go/build" GOFLAGS=-modcacherw \
    go install "${packages[@]}"
  for pair in "$@"; do
    local package="${pair#*=}"
    mv "$gobin/${package##*/}" "$CACHE/bin/${pair%%=*}"
  done
  echo "$version" >"$stamp"
  step "$name" "built in $((SECONDS - started))s"
}

go_tool toxiproxy toxiproxy "$TOXIPROXY_VERSION" \
  toxiproxy-server=github.com/Shopify/toxiproxy/v2/cmd/server \
  toxiproxy-cli=github.com/Shopify/toxiproxy/v2/cmd/cli
# The time-series server, its rule evaluator and the rules' unit-test runner
# (docs/observability.md, docs/dashboards.md): about a minute cold on two cores; the vmui
# web UI is inside the binary. A cache built before a binary joined this list lacks it,
# which go_tool sees, so it rebuilds the set.
go_tool metrics victoriametrics "$VICTORIAMETRICS_VERSION" \
  victoria-metrics=github.com/VictoriaMetrics/VictoriaMetrics/app/victoria-metrics \
  vmalert=github.com/VictoriaMetrics/VictoriaMetrics/app/vmalert \
  vmalert-tool=github.com/VictoriaMetrics/VictoriaMetrics/app/vmalert-tool
