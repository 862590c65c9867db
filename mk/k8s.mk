# Kubernetes: the local cluster, deploying the chart, and the chart's tests.
#
# KUBECONFIG: the local cluster's (var/k8s/kubeconfig) when it exists and none is set, so
# `make deploy` goes to the local cluster by default and to kind/minikube when the caller's
# KUBECONFIG (or ~/.kube/config) points there.
CLUSTER      := $(PY) k8s/local/clusterctl.py
LOCAL_KUBECONFIG := $(CURDIR)/var/k8s/kubeconfig
ifeq ($(origin KUBECONFIG),undefined)
  ifneq ($(wildcard $(LOCAL_KUBECONFIG)),)
    export KUBECONFIG := $(LOCAL_KUBECONFIG)
  endif
endif
HELM_BIN     = $(shell k8s/tool.sh helm)
KUBECTL_BIN  = $(shell k8s/tool.sh kubectl)
NAMESPACE   ?= murmur
RELEASE     ?= murmur
CHART       := helm/murmur
# Extra values: VALUES="-f helm/murmur/values-ha.yaml" (the HA profile) or any helm flags.
VALUES      ?=
DEPLOY_TIMEOUT ?= 15m

.PHONY: cluster cluster-down cluster-status cluster-logs kubeconfig k8s-url deploy undeploy \
        k8s-test test-k8s k8s-tools

cluster: install ## Start the local single-node Kubernetes (builds it once; ~1 min when built)
	@$(CLUSTER) up

cluster-down: ## Delete the local cluster and restore the host (sysctls, iptables, links)
	@$(CLUSTER) down

cluster-status: ## The local cluster's host processes, node and pods
	@$(CLUSTER) status

cluster-logs: ## Follow the local cluster's logs (SERVICE=kubelet for one component)
	@$(CLUSTER) logs $(SERVICE)

kubeconfig: ## Print the path of the local cluster's kubeconfig (export KUBECONFIG=...)
	@echo $(LOCAL_KUBECONFIG)

k8s-tools: ## Build (once) and print helm and kubectl for the Kubernetes targets
	@echo "helm    $(HELM_BIN)"; echo "kubectl $(KUBECTL_BIN)"

k8s-url: ## Print the public API base URL of the current deployment (.../api/v1)
	@KUBECTL=$(KUBECTL_BIN) NAMESPACE=$(NAMESPACE) RELEASE=$(RELEASE) bash k8s/url.sh

# The images of this revision everywhere (`make images` loads them into kind, minikube or
# the local cluster); the local cluster also gets its own values file (never pull).
deploy: ## helm upgrade --install the chart into the current context (local cluster by default)
	@set -e; ctx=$$($(KUBECTL_BIN) config current-context); \
	extra="--set-string image.tag=$(IMAGE_TAG)"; if [ "$$ctx" = murmur-local ]; then \
	  extra="-f k8s/local/values.yaml $$extra"; fi; \
	$(KUBECTL_BIN) create namespace $(NAMESPACE) --dry-run=client -o yaml | $(KUBECTL_BIN) apply -f - >/dev/null; \
	$(KUBECTL_BIN) label --overwrite namespace $(NAMESPACE) \
	  pod-security.kubernetes.io/enforce=restricted pod-security.kubernetes.io/warn=restricted >/dev/null; \
	echo "deploying $(RELEASE) to $$ctx/$(NAMESPACE) $$extra $(VALUES)"; start=$$(date +%s); \
	$(HELM_BIN) upgrade --install $(RELEASE) $(CHART) -n $(NAMESPACE) $$extra $(VALUES) \
	  --wait --wait-for-jobs --timeout $(DEPLOY_TIMEOUT); \
	echo "all pods Ready in $$(( $$(date +%s) - start ))s; API: $$($(MAKE) -s k8s-url)"

undeploy: ## Uninstall the release and delete its namespace (volumes included)
	@$(HELM_BIN) uninstall $(RELEASE) -n $(NAMESPACE) --wait 2>/dev/null || true
	@$(KUBECTL_BIN) delete namespace $(NAMESPACE) --ignore-not-found --wait=true

k8s-test: ## Lint, server-side dry run, helm test, API walk, rolling upgrade, pod kill
	@MURMUR_PROFILE=test HELM=$(HELM_BIN) KUBECTL=$(KUBECTL_BIN) NAMESPACE=$(NAMESPACE) \
	  RELEASE=$(RELEASE) IMAGE_TAG=$(IMAGE_TAG) $(PY) -m pytest tests/k8s

# The whole Kubernetes layer as CI runs it: from nothing to a tested release and back.
test-k8s: install ## The k8s test layer: cluster, images, deploy, k8s-test, cluster-down
	@bash k8s/local/test-layer.sh
