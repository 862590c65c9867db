#!/usr/bin/env bash
# The Kubernetes test layer, from nothing to a tested release and back, as CI runs it:
# the local cluster, the images, the chart deployed, `make k8s-test`, then the cluster
# deleted and the host compared with how it was before. Each step prints its duration.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
PY=${PY:-.venv/bin/python}
mkdir -p var
before=var/k8s-host-before.json
layer_start=$(date +%s)
step() {  # step NAME COMMAND...: run, time and report one step
  local name=$1 t=$(date +%s); shift
  echo "=== k8s layer: $name"
  "$@"; local rc=$?
  echo "=== k8s layer: $name finished with status $rc in $(( $(date +%s) - t ))s"
  return $rc
}
diagnose() {
  echo "=== k8s layer: diagnostics"
  local k; k=$(k8s/tool.sh kubectl)
  "$k" --kubeconfig var/k8s/kubeconfig get nodes,pods,pvc,jobs -A -o wide 2>&1 | head -60
  "$k" --kubeconfig var/k8s/kubeconfig get events -A --sort-by=.lastTimestamp 2>&1 | tail -40
  for pod in $("$k" --kubeconfig var/k8s/kubeconfig get pods -n murmur -o name 2>/dev/null); do
    echo "--- $pod"; "$k" --kubeconfig var/k8s/kubeconfig logs -n murmur "$pod" --all-containers --tail 20 2>&1
  done
}
stack_ports() { ss -Hltn | awk '{print $4}' | grep -E ':(8090|15432|16379|19092|19042)$' | sort; }

status=0
if [ ! -e /run/murmur-k8s/supervisor.sock ]; then
  $PY k8s/local/clusterctl.py snapshot "$before"
fi
ports_before=$(stack_ports)
step "cluster" make -s cluster || status=$?
[ $status = 0 ] && { step "images" make -s images || status=$?; }
[ $status = 0 ] && { step "deploy" make -s deploy || status=$?; }
[ $status = 0 ] && { step "k8s-test" make -s k8s-test || status=$?; }
[ $status = 0 ] || diagnose
step "cluster-down" make -s cluster-down || status=$?
if [ -f "$before" ]; then
  step "host restored" $PY k8s/local/clusterctl.py check-host "$before" || status=$?
fi
if [ "$(stack_ports)" != "$ports_before" ]; then
  echo "the local stack's listeners changed while the cluster ran:"; echo "$ports_before"; stack_ports
  status=1
fi
echo "k8s layer finished with status $status in $(( $(date +%s) - layer_start ))s"
exit $status
