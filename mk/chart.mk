# The Helm chart (helm/murmur): lint it with each values file, regenerate its README table.
# HELM_BIN comes from mk/k8s.mk (helm built once from the Go module proxy).
CHART_VALUES_FILES := helm/murmur/values-ha.yaml k8s/local/values.yaml

.PHONY: chart-lint chart-docs

chart-lint: ## helm lint --strict the chart with its defaults, the HA and the local values
	@set -e; h=$(HELM_BIN); $$h lint --strict helm/murmur; \
	for f in $(CHART_VALUES_FILES); do $$h lint --strict helm/murmur -f $$f; done

chart-docs: ## Regenerate the chart README's Parameters table from the @param comments
	@npx --yes @bitnami/readme-generator-for-helm@2.7.2 \
	  -v helm/murmur/values.yaml -r helm/murmur/README.md | grep -v '^Skipping check'

.PHONY: dashboards rules-test

dashboards: ## Regenerate the dashboards (vmui, Grafana) and the chart's copy of the rules from observability/
	@$(PY) observability/dashboards.py

# vmalert-tool is built by local/install.sh next to vmalert (MURMUR_CACHE or .cache).
rules-test: ## Run the alerting and recording rules' unit tests (observability/tests/) with vmalert-tool
	@$${MURMUR_CACHE:-.cache}/bin/vmalert-tool unittest $(addprefix --files ,$(wildcard observability/tests/*.yml))
