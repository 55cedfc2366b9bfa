# Slipway developer commands. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

.PHONY: venv
venv: $(STAMP) ## Create the operator's virtual environment (.venv)

.PHONY: generate
generate: venv ## Regenerate crds/ and the chart's CRDs from the API models
	$(BIN)/slipway crds --out crds >/dev/null
	$(BIN)/slipway crds --out charts/slipway/crds >/dev/null

.PHONY: verify-generated
verify-generated: venv ## Fail if crds/ or the chart's CRDs are out of date
	$(BIN)/slipway crds --check --out crds
	$(BIN)/slipway crds --check --out charts/slipway/crds

.PHONY: lint
lint: venv ## ruff, mypy --strict, import layers, helm lint
	$(BIN)/ruff check operator tests benchmarks/operator benchmarks/rollout benchmarks/ingress benchmarks/devchain
	$(BIN)/ruff format --check operator tests benchmarks/operator benchmarks/rollout benchmarks/ingress benchmarks/devchain
	$(BIN)/mypy
	$(BIN)/lint-imports
	"$$($(BIN)/slipway tool helm)" lint charts/slipway

.PHONY: test
test: test-operator test-model-server test-trainer test-pipelines ## Run every test suite

.PHONY: test-operator
test-operator: venv ## Operator: lint, unit tests, integration tests on a real API server
	$(MAKE) --no-print-directory lint verify-generated
	@# build (first run) or find the control plane and Prometheus here, where progress is visible
	@$(BIN)/slipway tool kubectl >/dev/null
	@$(BIN)/python -m slipway.devcluster.prometheus >/dev/null
	$(BIN)/pytest tests

.PHONY: test-model-server
test-model-server: ## Model server image: real HTTP against a real ONNX model
	images/model-server/test.sh

.PHONY: test-trainer
test-trainer: ## Trainer image: training, resume, DDP, ONNX export and parity
	images/trainer/test.sh

.PHONY: test-pipelines
test-pipelines: ## Kubeflow pipelines: compile and run end to end with kfp.local
	pipelines/test.sh

.PHONY: dev
dev: venv ## Local control plane, operator, stand-ins, Prometheus, examples: first prediction, then a canary
	$(BIN)/slipway dev up --operator --examples --load --rollout

.PHONY: dev-down
dev-down: venv ## Stop every process `make dev` started
	$(BIN)/slipway dev down

.PHONY: bench
bench: venv ## Operator benchmark: convergence time, steady-state writes, memory
	$(BIN)/python -m benchmarks.operator.run

.PHONY: bench-rollout
bench-rollout: venv ## Rollout benchmark: 100 canaries in analysis on a real Prometheus
	$(BIN)/python -m benchmarks.rollout.run

.PHONY: bench-ingress
bench-ingress: venv ## Ingress benchmark: the Istio ingress stand-in against the model server, c=64
	$(BIN)/python -m benchmarks.ingress.run

.PHONY: bench-dev
bench-dev: venv ## make dev benchmark: seconds to the first prediction and to the canary's end
	$(BIN)/python -m benchmarks.devchain.run
