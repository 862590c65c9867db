#!/usr/bin/env bash
# Start a minikube profile sized for Murmur, with a network plugin that enforces the
# chart's NetworkPolicies (minikube's default bridge plugin ignores them).
#
#   k8s/minikube/start.sh            # profile "murmur"; MINIKUBE_PROFILE=... to rename
#   extra flags are passed on:  k8s/minikube/start.sh --driver=kvm2
set -euo pipefail
PROFILE=${MINIKUBE_PROFILE:-murmur}

# 4 CPUs and 12 GiB: the whole system (JVM stores included) with room for a load test;
# it also runs, more slowly, on 2 CPUs and 8 GiB.
exec minikube start --profile "$PROFILE" \
  --cpus "${MINIKUBE_CPUS:-4}" --memory "${MINIKUBE_MEMORY:-12g}" --disk-size 30g \
  --kubernetes-version "${MINIKUBE_KUBERNETES_VERSION:-v1.34.4}" \
  --cni calico \
  --addons metrics-server,default-storageclass,storage-provisioner \
  "$@"
