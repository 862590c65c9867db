# Murmur: a Twitter-style microservices reference system. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV    ?= .venv
PY      := $(VENV)/bin/python
STACK   := $(PY) local/stackctl
PROFILE ?= dev
SERVICE ?=
DEP     ?=
TOXIC   ?=
MS      ?=
USERS ?= 10000
TWEETS ?= 3
CELEBRITIES ?= 5
PYTEST  := MURMUR_PROFILE=test $(PY) -m pytest

.PHONY: help install up down status logs start stop restart reload rolling-restart rotate-keys \
        toxic cut heal \
        toxics clean bootstrap test test-unit test-integration test-platform test-e2e \
        test-fault test-up seed bench api-docs api-fuzz trace redrive urls

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

install: ## Install what is missing (apt packages, .venv, Kafka/Cassandra/Zipkin jars, Toxiproxy, VictoriaMetrics)
	@bash local/install.sh

up: install ## Start Murmur (every store and service) and wait until all are ready
	@$(STACK) --profile $(PROFILE) up

down: ## Stop every component and the supervisor
	@$(STACK) down

status: ## One line per component: up/down, port, pid
	@$(STACK) status

logs: ## Follow the logs (SERVICE=x for one component)
	@$(STACK) logs $(SERVICE)

start: ## Start one component and wait until it is ready (SERVICE=x)
	@$(STACK) --profile $(PROFILE) start $(SERVICE)

stop: ## Stop one component (SERVICE=x); its port refuses afterwards
	@$(STACK) stop $(SERVICE)

restart: ## Restart one component gracefully and wait until it is ready (SERVICE=x)
	@$(STACK) --profile $(PROFILE) restart $(SERVICE)

reload: ## Replace a gunicorn service's workers in place, no request refused (SERVICE=x)
	@$(STACK) --profile $(PROFILE) reload $(SERVICE)

rolling-restart: ## Restart PROFILE's service processes one at a time, each ready before the next
	@$(STACK) --profile $(PROFILE) rolling-restart

rotate-keys: ## New token-signing key for PROFILE: published to the gateways, then signing; no session ends
	@$(STACK) --profile $(PROFILE) rotate-keys

toxic: ## Add a fault on PROFILE's proxy to one store (DEP=cassandra TOXIC=latency|timeout|reset MS=2000)
	@$(STACK) --profile $(PROFILE) toxic add $(DEP) $(TOXIC) $(MS)

cut: ## Cut PROFILE's proxy to one store: its services' connections to it are refused (DEP=redis)
	@$(STACK) --profile $(PROFILE) toxic cut $(DEP)

heal: ## Remove every fault from one of PROFILE's proxies (DEP=x), or from all of them
	@$(STACK) --profile $(PROFILE) toxic heal $(DEP)

toxics: ## List PROFILE's Toxiproxy proxies in front of the stores and their faults
	@$(STACK) --profile $(PROFILE) toxic list

bootstrap: ## Create databases, keyspaces and topics for PROFILE (idempotent)
	@$(STACK) --profile $(PROFILE) bootstrap

seed: ## Seed a demo social graph into the running stack (USERS=10000 TWEETS=3 CELEBRITIES=5)
	@MURMUR_PROFILE=$(PROFILE) $(PY) local/seed.py --users $(USERS) --tweets $(TWEETS) \
		--celebrities $(CELEBRITIES)

bench: ## Benchmarks against the running stack: fan-out, home-timeline reads, bytes per entry
	@command -v wrk >/dev/null || (echo "installing wrk" && apt-get install -y -qq wrk >/dev/null)
	@MURMUR_PROFILE=$(PROFILE) $(PY) bench/fanout.py
	@MURMUR_PROFILE=$(PROFILE) $(PY) bench/fanout_e2e.py
	@MURMUR_PROFILE=$(PROFILE) $(PY) bench/fanout_e2e.py --prefill 800
	@MURMUR_PROFILE=$(PROFILE) $(PY) bench/reads.py
	@$(PY) bench/resilience.py

redrive: ## Replay fanout's dead letters that can be processed now, each once (DRY_RUN=1 lists them)
	@MURMUR_PROFILE=$(PROFILE) PYTHONPATH=services $(PY) -m fanout.entrypoints.redrive \
		$(if $(DRY_RUN),--dry-run) $(if $(FROM_BEGINNING),--from-beginning)

urls: ## Every address to open for PROFILE, one per line as `name url` (API, web, traces, metrics, ...)
	@$(STACK) --profile $(PROFILE) urls

trace: ## Print one trace as a tree (ID=<trace id>, default the latest that reached fanout; SOURCE=zipkin|file)
	@MURMUR_PROFILE=$(PROFILE) $(PY) local/trace_tree.py $(if $(ID),--id $(ID)) $(if $(SOURCE),--source $(SOURCE))

api-docs: ## Regenerate docs/api-reference.md from the gateway's OpenAPI document
	@PYTHONPATH=services $(PY) -m gateway.entrypoints.apidoc > docs/api-reference.md

api-fuzz: ## Schemathesis on PROFILE's API through nginx: every check, stateful too (EXAMPLES=50 SEED= MAX_TIME=)
	@MURMUR_PROFILE=$(PROFILE) $(PY) local/api_fuzz.py $(if $(EXAMPLES),--max-examples $(EXAMPLES)) \
		$(if $(SEED),--seed $(SEED)) $(if $(MAX_TIME),--max-time $(MAX_TIME))

clean: ## Stop everything and delete all local data (asks unless FORCE=1)
	@if [ "$(FORCE)" != 1 ]; then read -r -p "Delete all Murmur data in var/? [y/N] " ok && [ "$$ok" = y ]; fi
	@if [ -x $(PY) ]; then $(STACK) down; fi
	@rm -rf var
	@echo "Murmur data removed."

test-up: install ## Bring up the stores and the test profile's services
	@$(STACK) --profile test up

test: test-up browser-install ## Run every test layer against the real servers, the Kubernetes layer last
	@$(PYTEST) tests --ignore=tests/k8s
	@$(MAKE) --no-print-directory test-k8s

test-unit: install ## Unit tests (no infrastructure)
	@$(PYTEST) tests/unit

test-integration: test-up ## Integration tests: each adapter against its real store
	@$(PYTEST) tests/integration

test-platform: test-up ## Platform tests: make up/stop/start behave as documented
	@$(PYTEST) tests/platform

test-e2e: test-up ## End-to-end tests through nginx (test profile, :8090)
	@$(PYTEST) tests/e2e

test-fault: test-up load-install ## Fault tests: every local chaos experiment under load (chaos/), its safeguard switches, a rolling restart
	@$(PYTEST) tests/fault

# Targets of each part (images, Kubernetes, load tests) live in their own files.
include $(sort $(wildcard mk/*.mk))
