# costgov: `make help` lists every task.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the tasks
	@grep -hE '^[a-z][a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(BIN)/costgov: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

.PHONY: install
install: $(BIN)/costgov ## create .venv and install costgov with its test tools

.PHONY: demo
demo: install ## estimate examples/ with the bundled price catalog (no cluster needed)
	$(BIN)/costgov estimate -f examples/

.PHONY: prerequisites
prerequisites: ## Prometheus (apt), kube-apiserver + etcd, helm, kubeconform: once, cached
	bash hack/install-prerequisites.sh

.PHONY: test
test: install prerequisites ## run the whole test suite (lint, types, layers, CRD drift, all tiers)
	$(MAKE) --no-print-directory lint verify
	$(BIN)/pytest -q tests --ignore=tests/sim
	$(BIN)/pytest -q -p no:randomly tests/sim

.PHONY: unit
unit: install ## run the unit tier only
	$(BIN)/pytest -q tests/unit tests/cli

.PHONY: integration
integration: install ## run the integration tier (kmock emulator + real Prometheus)
	$(BIN)/pytest -q tests/integration

.PHONY: lint
lint: install ## ruff, mypy --strict and the import-linter layer contracts
	$(BIN)/ruff check operator tests
	$(BIN)/ruff format --check operator tests
	$(BIN)/mypy
	$(BIN)/lint-imports

.PHONY: manifests
manifests: install ## regenerate crds/ (and the chart's copy) from the pydantic models
	$(BIN)/costgov crds --output-dir crds
	$(BIN)/costgov crds --output-dir charts/costgov/crds
	$(BIN)/costgov rules --output charts/costgov/files/catchup-rules.yaml

.PHONY: verify
verify: install ## fail when crds/ or the chart's CRDs differ from what the models generate
	$(BIN)/costgov crds --output-dir crds --check
	$(BIN)/costgov crds --output-dir charts/costgov/crds --check
	$(BIN)/costgov rules --output charts/costgov/files/catchup-rules.yaml --check

.PHONY: control-plane
control-plane: install ## build (once) and run etcd + kube-apiserver on loopback; Ctrl-C stops
	$(BIN)/python -m tests.e2e.controlplane

.PHONY: e2e
e2e: install ## run the e2e tier (real kube-apiserver + etcd, helm, kubeconform, the wheel)
	$(BIN)/pytest -q tests/e2e tests/packaging

.PHONY: sim-up
sim-up: install prerequisites ## start the simulated GPU cluster in the background (.sim/env, .sim/kubeconfig)
	$(BIN)/python -m tests.sim.cluster up

.PHONY: sim-down
sim-down: ## stop everything sim-up started (etcd last)
	$(BIN)/python -m tests.sim.cluster down

.PHONY: sim-demo
sim-demo: install ## on a running sim: budgets, dollars accruing, a suspension, a capped model server
	$(BIN)/python -m tests.sim.demo

.PHONY: sim
sim: install prerequisites ## run the sim tier (its own simulated cluster, stopped at the end)
	$(BIN)/pytest -q -p no:randomly tests/sim

.PHONY: bench
bench: install ## offline estimate of 1,000 manifests (prints figures; docs/benchmarks.md)
	$(BIN)/python tests/bench/bench_estimate.py

.PHONY: bench-admission
bench-admission: install ## admission p50/p99 at 200 req/s on one core, next to a no-op endpoint
	$(BIN)/python tests/bench/bench_admission.py

.PHONY: bench-cycle
bench-cycle: install ## one reconcile cycle over 10,000 GPU pods / 1,000 nodes (real Prometheus)
	$(BIN)/python tests/bench/bench_cycle.py

.PHONY: bench-catchup
bench-catchup: install ## a fresh install catching up on HOURS (3; 720 = 30 days) of 10,000 pods' history (real Prometheus); RULES=1|promtool: from the recording rules
	$(BIN)/python tests/bench/bench_catchup.py

.PHONY: bench-reread
bench-reread: install prerequisites ## admission's fresh read of policies/budgets/approvals (real apiserver)
	$(BIN)/python tests/bench/bench_reread.py

.PHONY: bench-scale
bench-scale: install prerequisites ## 1,000 kwok GPU nodes, 10,000 pods through the apiserver: RSS, cycle, status, admission
	$(BIN)/python tests/bench/bench_scale.py

.PHONY: bench-restart
bench-restart: install prerequisites ## the operator starting on 1,000 nodes and 10,000 GPU pods (real apiserver): RSS, CPU
	$(BIN)/python tests/bench/bench_restart.py

.PHONY: image
image: ## build the container image (docker, else buildah with Debian bases); IMAGE=costgov:dev
	bash hack/build-image.sh

.PHONY: image-test
image-test: install prerequisites image ## build the image and prove it: user, read-only, no build tools, the operator from it on the apiserver and the simulated cluster
	COSTGOV_IMAGE=$${IMAGE:-costgov:dev} $(BIN)/pytest -q -p no:randomly tests/e2e/test_image.py
	COSTGOV_IMAGE=$${IMAGE:-costgov:dev} COSTGOV_SIM_FROM_IMAGE=1 $(BIN)/pytest -q -p no:randomly \
	  tests/sim/test_admission.py \
	  tests/sim/test_training.py::test_spend_grows_at_the_node_price_and_the_job_is_suspended_at_its_budget

.PHONY: run
run: install ## run the operator against the current kubeconfig (COSTGOV_* settings)
	$(BIN)/costgov run

.PHONY: clean
clean: ## remove the virtual environment and caches
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis .import_linter_cache
