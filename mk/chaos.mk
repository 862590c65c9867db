# Chaos experiments (chaos/): Chaos Toolkit runs each experiment under Locust load and
# judges it by its steady-state hypothesis; one verdict table at the end.
#
#   make chaos [EXPERIMENT=name[,name]] [BREAK=home-fallback|breakers|outbox-relay]
#   make chaos-k8s [EXPERIMENT=name]          (the deployment `make k8s-url` names)
#   make chaos-list
# Each run keeps its journals, the load's reports and report.md in var/chaos/runs/<time>/.
CHAOS := $(PY) chaos/run.py
CHAOS_ARGS = $(if $(EXPERIMENT),--experiment $(EXPERIMENT)) $(if $(BREAK),--break $(BREAK))

.PHONY: chaos chaos-k8s chaos-list

chaos: up load-install ## Run the local chaos experiments under load (EXPERIMENT=, BREAK=); prints the verdict table
	@$(CHAOS) --profile $(PROFILE) $(CHAOS_ARGS)

chaos-k8s: load-install ## Run the Kubernetes chaos experiments against the deployment (EXPERIMENT=)
	@$(CHAOS) --target k8s $(CHAOS_ARGS)

chaos-list: install ## List the chaos experiments (TARGET=k8s for the Kubernetes ones)
	@$(CHAOS) --list $(if $(filter k8s,$(TARGET)),--target k8s) $(CHAOS_ARGS)
