# Simulated lab fleet (issue 7): images, molecule scenarios, the demo and the fleet benchmark.
# Included by the Makefile, which provides $(VENV)/$(BIN)/$(PY) and `make venv`.
FLEET_CONTAINERS_CONF := $(CURDIR)/tests/containers/containers.conf

.PHONY: images molecule demo bench-fleet

images: ## Build the local Debian 12/13 lab PC images (seconds when present)
	CONTAINERS_CONF=$(FLEET_CONTAINERS_CONF) tests/containers/build-image.sh all

molecule: apt venv collection-path ## The molecule scenarios (lab, users) against the test mail stack
	$(PY) -m pytest tests/molecule -q -rfE $(PYTEST_ARGS)

demo: apt venv collection-path ## A throwaway lab PC: converge site.yml, verify.yml, mutt reads the demo INBOX
	PATH=$(abspath $(BIN)):$$PATH CONTAINERS_CONF=$(FLEET_CONTAINERS_CONF) $(PY) tests/containers/demo.py

# BENCH_FLEET_ARGS=--fact-cache measures with the jsonfile fact cache the README recommends for fleets.
BENCH_FLEET_ARGS ?=
bench-fleet: apt venv collection-path ## 20 SSH containers: ansible ping vs site.yml first/rerun (medians, ratios)
	PATH=$(abspath $(BIN)):$$PATH CONTAINERS_CONF=$(FLEET_CONTAINERS_CONF) $(PY) tests/containers/bench_fleet.py $(BENCH_FLEET_ARGS)
