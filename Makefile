# seqops: `make run` trains and ships every task; `make test` runs the suite. Both build .venv first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH_VERSION := 2.13.0
# Elsewhere, point pip at PyTorch's CPU wheels, e.g. TORCH_INDEX="--index-url <cpu wheel index>";
# here the CPU wheel lies on disk and pip finds it through its configured find-links.
TORCH_INDEX ?=
DATA_DIR ?= $(if $(wildcard ../shared/data),../shared/data,)
export SEQOPS_DATA_DIR ?= $(DATA_DIR)
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false

.PHONY: venv run test mutation lint bench ui prefect-ui services-up services-down deploy schedule clean

venv: $(STAMP)

# Torch first, pinned to the CPU build, so no resolver ever pulls a CUDA build; then the project.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==$(TORCH_VERSION) $(TORCH_INDEX)
	$(BIN)/pip install --quiet -e '.[dev,servers]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/seqops pipeline --profile $(or $(PROFILE),default)

# In a random order (pytest-randomly); `make test SEED=N` repeats the order a run printed.
SEED := $(shell od -An -N2 -tu2 /dev/urandom | tr -d ' ')
test: $(STAMP)
	@echo "test order: SEED=$(SEED)"
	$(BIN)/pytest -q --durations=12 -p randomly --randomly-seed=$(SEED)

# Mutation testing of the modules that hold README's promises (tests/mutation/run.py); slow, not in `test`.
mutation: $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,servers,mutation]'
	$(BIN)/python tests/mutation/run.py $(MUTANTS)

# Benchmarks against the registered champions (run `make run` or a benchmark profile first).
bench: $(STAMP)
	$(BIN)/python -m benchmarks.serving run --threads 2 --memory
	$(BIN)/python -m benchmarks.translation --threads 2
	$(BIN)/python -m benchmarks.generation --threads 2

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

ui: $(STAMP)
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow.db --host 127.0.0.1 --port 5000 --workers 1

prefect-ui: $(STAMP)
	PREFECT_HOME=$(CURDIR)/.seqops/prefect $(BIN)/prefect server start --host 127.0.0.1 --port 4200

# The production topology on loopback (infra/services.sh): PostgreSQL, MLflow and Prefect servers, a worker.
services-up: $(STAMP)
	bash infra/services.sh up

services-down:
	bash infra/services.sh down

# The deployments of infra/prefect.yaml, on the servers' process work pool (run `make services-up` first).
deploy: $(STAMP)
	. .seqops/services/env && SEQOPS_PROJECT_DIR=$(CURDIR) $(BIN)/prefect --no-prompt deploy --all \
		--prefect-file infra/prefect.yaml

# The same deployments served from this process instead of a work pool.
schedule: $(STAMP)
	. .seqops/services/env && $(BIN)/seqops schedule

clean:
	rm -rf .seqops mlflow.db outputs
