#!/usr/bin/env bash
# Print the public API's base URL of the current deployment, ending in /api/v1.
#   local cluster: NodePorts answer on 127.0.0.1      kind: extraPortMappings to localhost
#   minikube: the node's address                      otherwise: the edge's Ingress or LoadBalancer
set -euo pipefail
KUBECTL=${KUBECTL:-kubectl} NAMESPACE=${NAMESPACE:-murmur} RELEASE=${RELEASE:-murmur}
svc="$RELEASE-edge"
ctx=$($KUBECTL config current-context)
port=$($KUBECTL -n "$NAMESPACE" get service "$svc" -o jsonpath='{.spec.ports[0].nodePort}' 2>/dev/null || true)
case $ctx in
  murmur-local) host=127.0.0.1 ;;
  kind-*)       host=localhost ;;
  minikube*)    host=$(minikube ip -p "$ctx") ;;
  *)            host=$($KUBECTL -n "$NAMESPACE" get service "$svc" \
                  -o jsonpath='{.status.loadBalancer.ingress[0].ip}{.status.loadBalancer.ingress[0].hostname}' 2>/dev/null || true)
                port=80 ;;
esac
if [ -z "$host" ] || [ -z "$port" ]; then
  echo "no reachable edge Service $NAMESPACE/$svc in context $ctx (is Murmur deployed? make deploy)" >&2
  exit 1
fi
echo "http://$host:$port/api/v1"
