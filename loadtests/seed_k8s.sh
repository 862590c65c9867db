#!/usr/bin/env bash
# Seed the demo graph into a Murmur deployment on Kubernetes and write its load-test
# manifest (`make seed-k8s`). local/seed.py needs the users database and the timeline
# service's internal API, which the chart does not expose: two `kubectl port-forward`s
# reach them, with the deployment's own settings (the <release>-env ConfigMap) and its
# Postgres password (the <release>-postgres Secret).
#
#   KUBECTL=kubectl NAMESPACE=murmur RELEASE=murmur PYTHON=.venv/bin/python \
#     loadtests/seed_k8s.sh [seed.py arguments...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

KUBECTL="${KUBECTL:-kubectl}"
NAMESPACE="${NAMESPACE:-murmur}"
RELEASE="${RELEASE:-murmur}"
PYTHON="${PYTHON:-.venv/bin/python}"
MANIFEST="${MANIFEST:-var/seed/k8s.json}"
k() { "$KUBECTL" -n "$NAMESPACE" "$@"; }

env_value() {  # a key of the deployment's settings ConfigMap
  k get configmap "$RELEASE-env" -o "jsonpath={.data.$1}"
}
free_port() {
  "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

k get deployment "$RELEASE-timeline" >/dev/null \
  || { echo "seed-k8s: no release $RELEASE in namespace $NAMESPACE (make deploy?)" >&2; exit 2; }
password="$(k get secret "$RELEASE-postgres" -o jsonpath='{.data.password}' | base64 -d)"
pg_port="$(free_port)"
timeline_port="$(free_port)"

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT
# kubectl itself in the background (not through `k`, a function, whose subshell would be
# what `$!` names and the trap kills, leaving the forward running).
"$KUBECTL" -n "$NAMESPACE" port-forward "svc/$RELEASE-postgres" "$pg_port:5432" >/dev/null 2>&1 &
pids+=($!)
"$KUBECTL" -n "$NAMESPACE" port-forward "svc/$RELEASE-timeline" "$timeline_port:8000" >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  if "$PYTHON" - "$pg_port" "$timeline_port" <<'EOF' 2>/dev/null; then break; fi
import socket, sys
for port in sys.argv[1:]:
    socket.create_connection(("127.0.0.1", int(port)), timeout=1).close()
EOF
  sleep 0.2
done

MURMUR_PG_HOST=127.0.0.1 MURMUR_PG_PORT="$pg_port" MURMUR_PG_PASSWORD="$password" \
MURMUR_PG_USER="$(env_value MURMUR_PG_USER)" MURMUR_PG_DATABASE="$(env_value MURMUR_PG_DATABASE)" \
MURMUR_TIMELINE_URL="http://127.0.0.1:$timeline_port" \
CELEBRITY_THRESHOLD="$(env_value CELEBRITY_THRESHOLD)" MURMUR_PROFILE=dev \
  "$PYTHON" local/seed.py --manifest "$MANIFEST" "$@"
