# KubeSentinel developer tasks. Every target installs what it needs into .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: deps build demo test test-coverage test-integration conformance benchmark evaluate lint docs deploy-manifests clean

$(STAMP): pyproject.toml setup.py src/kubesentinel/ai/proto/analyzer.proto
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python >= 3.11 is required (set PYTHON=python3.11)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

deps: $(STAMP)  ## create .venv with kubesentinel (editable) and the dev tools

build: deps  ## wheel and sdist into dist/
	$(BIN)/python -m pip wheel --quiet --no-deps --wheel-dir dist .

demo: deps  ## scan the shipped examples (exit 1 means findings, as expected here)
	$(BIN)/kubesentinel scan --path examples/k8s-manifests || [ $$? -eq 1 ]

test: deps  ## the whole test suite with the coverage gate (integration tests skip without their services)
	$(BIN)/python -m pytest --cov --cov-report=term:skip-covered

test-coverage: deps  ## the same, listing the lines no test runs
	$(BIN)/python -m pytest --cov --cov-report=term-missing:skip-covered

test-integration: deps  ## only the tests that run whole processes or talk to services
	$(BIN)/python -m pytest -m integration

conformance: deps  ## agreement with peer scanners' labelled fixtures in ../shared/conformance
	$(BIN)/python -m pytest -m conformance -s -q

benchmark: deps  ## throughput, memory and start-up figures, printed as numbers
	$(BIN)/python bench/static_bench.py
	$(BIN)/python bench/runtime_bench.py
	$(BIN)/python bench/monitor_memory_bench.py
	$(BIN)/python bench/cel_bench.py --repeat 3
	$(BIN)/python bench/vault_bench.py
	$(BIN)/python bench/vault_proof_bench.py
	$(BIN)/python bench/vault_policy_bench.py
	$(BIN)/python bench/scale_bench.py
	$(BIN)/python bench/report_bench.py

evaluate: deps  ## the behavioural analyzer on simulated and independently generated streams: ROC AUC, detection, false alarms, speed
	$(BIN)/python bench/ai_eval.py
	$(BIN)/python bench/ai_hard_eval.py
	$(BIN)/python bench/ai_model_size_bench.py

lint: deps
	$(BIN)/ruff check src tests bench deploy
	$(BIN)/ruff format --check src tests bench deploy
	$(BIN)/mypy src

docs: deps  ## regenerate docs/rules.md and the rule bundle from the rule catalogue
	$(BIN)/python -m kubesentinel.static.ruledocs > docs/rules.md
	$(BIN)/python -m kubesentinel.static.rulebundle > src/kubesentinel/static/rules.bundle.json

deploy-manifests: deps  ## regenerate the Kustomize base (deploy/kustomize/base) from the Helm chart
	@$(BIN)/python -c 'import helm_python' 2>/dev/null || command -v helm >/dev/null \
		|| $(BIN)/python -m pip install --quiet "helm-python-sdk==0.2.2"
	$(BIN)/python deploy/render_base.py

clean:
	rm -rf $(VENV) dist build .pytest_cache .mypy_cache .ruff_cache .coverage
