# Load tests with Locust (loadtests/): headless runs with SLO gates, the web UI, the ramp.
#
# Locust lives in its own virtual environment (.venv-load, from loadtests/requirements.txt):
# it runs on gevent and pins its own requests/Flask/pytest, which the services must not
# follow. `make load-install` (a prerequisite of every target here and of `make test`)
# installs it, and reinstalls only when the requirements change.
#
#   make load [SHAPE=steady|ramp|spike] [USERS=] [SPAWN_RATE=] [DURATION=] [WORKERS=]
#             [TARGET=url|k8s] [SLO=file] [STEP_USERS=] [STEP_TIME=] [THINK=] [MANIFEST=]
#             [PAGE=] [TOUR=1] [WARMUP=]
# USERS also sizes `make seed` (10000 by default in the Makefile): a load run takes it only
# when it is given on the command line or in the environment, else the shape's default.
LOAD_VENV ?= .venv-load
LOAD_PY   := $(LOAD_VENV)/bin/python
LOAD_REQS := loadtests/requirements.txt
K8S_MANIFEST ?= var/seed/k8s.json

LOAD_ARGS = --profile $(PROFILE) \
	$(if $(filter command line environment,$(origin USERS)),--users $(USERS)) \
	$(if $(SPAWN_RATE),--spawn-rate $(SPAWN_RATE)) $(if $(DURATION),--duration $(DURATION)) \
	$(if $(SHAPE),--shape $(SHAPE)) $(if $(SLO),--slo $(SLO)) \
	$(if $(WORKERS),--workers $(WORKERS)) $(if $(STEP_USERS),--step-users $(STEP_USERS)) \
	$(if $(STEP_TIME),--step-time $(STEP_TIME)) $(if $(THINK),--think $(THINK)) \
	$(if $(PAGE),--page $(PAGE)) $(if $(filter 1,$(TOUR)),--tour) $(if $(WARMUP),--warmup $(WARMUP))

# TARGET=k8s: the deployment `make k8s-url` names, with the manifest its seed wrote.
define load_target
	if [ "$(TARGET)" = k8s ]; then \
	  target=$$($(MAKE) -s --no-print-directory k8s-url) || exit 2; \
	  set -- --target "$$target" --manifest "$(or $(MANIFEST),$(K8S_MANIFEST))"; \
	else \
	  set -- $(if $(TARGET),--target "$(TARGET)") $(if $(MANIFEST),--manifest "$(MANIFEST)"); \
	fi
endef

.PHONY: load load-ui load-install test-load seed-k8s loadgen-image

load-install: ## Install Locust into .venv-load (pinned; only when missing or changed)
	@want=$$(sha256sum $(LOAD_REQS) | cut -c1-16); \
	if [ -x $(LOAD_PY) ] && [ "$$(cat $(LOAD_VENV)/.requirements 2>/dev/null)" = "$$want" ]; then \
	  exit 0; fi; \
	echo "  install load         $(LOAD_REQS) into $(LOAD_VENV)"; \
	[ -x $(LOAD_PY) ] || python3 -m venv $(LOAD_VENV); \
	$(LOAD_VENV)/bin/pip install -q --disable-pip-version-check --cache-dir .cache/pip \
	  -r $(LOAD_REQS) && echo "$$want" > $(LOAD_VENV)/.requirements

load: load-install ## Headless load run with SLO gates (SHAPE= USERS= DURATION= TARGET= ...); last line: its report folder
	@$(load_target); $(LOAD_PY) -m loadtests.run $(LOAD_ARGS) "$$@"

load-ui: load-install ## Locust's web UI on 127.0.0.1:18089 (TARGET=, SHAPE= optional)
	@$(load_target); $(LOAD_PY) -m loadtests.run --ui $(LOAD_ARGS) "$$@"

seed-k8s: install ## Seed the Kubernetes deployment (USERS= TWEETS= CELEBRITIES=); writes var/seed/k8s.json
	@KUBECTL=$(KUBECTL_BIN) NAMESPACE=$(NAMESPACE) RELEASE=$(RELEASE) PYTHON=$(PY) \
	  MANIFEST=$(K8S_MANIFEST) bash loadtests/seed_k8s.sh --users $(USERS) --tweets $(TWEETS) \
	  --celebrities $(CELEBRITIES)

loadgen-image: install ## Build murmur-loadgen, the chart's optional load generator (ARCHIVE=1: also an OCI archive)
	@bash images/loadgen/build.sh $(if $(filter 1,$(ARCHIVE)),archive)

test-load: test-up load-install ## Load-test layer: a short run on the test profile, SLO breach, freshness
	@$(PYTEST) tests/load

# `make test` runs tests/load too: it needs Locust installed.
test: load-install

# `make k8s-test` runs the Kubernetes chaos experiments, whose background load is Locust.
k8s-test: load-install
