# The web front end (web/, served by nginx at /): its browser tests, its screenshots and
# its figures, all against the running test profile (http://127.0.0.1:8090/).
#
#   make test-browser          headless Chromium (Debian's chromium, driven by Playwright)
#   make screenshots           regenerate docs/screenshots/*.png from the running test stack
#   make bench-frontend        page weight and time to the first timeline (RUNS=10)

.PHONY: browser-install test-browser screenshots bench-frontend

# Debian's Chromium (Playwright's own browser download is not used: it comes from a CDN).
browser-install: ## Install Debian's chromium for the browser tests, if it is missing
	@command -v chromium >/dev/null || { echo "  install chromium    apt (Debian's chromium)"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium \
		>/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install \
		-y -qq --no-install-recommends chromium >/dev/null; }; }

test-browser: test-up browser-install ## Browser tests of the web front end in headless Chromium (test profile, :8090)
	@$(PYTEST) tests/browser

screenshots: test-up browser-install ## Regenerate docs/screenshots/*.png: each page of the web front end, a trace in Zipkin, two dashboards
	@MURMUR_PROFILE=test $(PY) local/screenshots.py

bench-frontend: test-up browser-install ## Front end figures: page weight and time to first timeline (RUNS=10)
	@MURMUR_PROFILE=test $(PY) bench/frontend.py $(if $(RUNS),--runs $(RUNS))
