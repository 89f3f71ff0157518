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

.PHONY: venv run test containers-test mutation lint bench ui prefect-ui services-up services-down deploy schedule clean

venv: $(STAMP)

# Torch first, pinned to the CPU build, so no resolver ever pulls a CUDA build; then the project.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==$(TORCH_VERSION) $(TORCH_INDEX)
	$(BIN)/pip install --quiet -e '.[dev,servers,ui]'
	touch $(STAMP)

# As many trainings at once as cores, each on its share of them: whole tasks when the run has several,
# else the task's cells; `make run PARALLEL=1` trains one task and one cell after another.
PARALLEL ?= $(shell nproc 2>/dev/null || echo 1)
run: $(STAMP)
	$(BIN)/seqops pipeline --profile $(or $(PROFILE),default) --parallel $(PARALLEL)

# In a random order (pytest-randomly); `make test SEED=N` repeats the order a run printed.
SEED := $(shell od -An -N2 -tu2 /dev/urandom | tr -d ' ')
test: $(STAMP)
	@echo "test order: SEED=$(SEED)"
	$(BIN)/pytest -q --durations=12 -p randomly --randomly-seed=$(SEED)

# The images built without Docker Hub and the compose stack run end to end, then removed
# (infra/containers-test.sh); installs Debian's docker.io where no engine runs, skips where none can.
containers-test: $(STAMP)
	bash infra/containers-test.sh

# Mutation testing of the modules that hold README's promises (tests/mutation/run.py); slow, not in `test`.
mutation: $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,servers,mutation]'
	$(BIN)/python tests/mutation/run.py $(MUTANTS)

# Benchmarks: training speed against a plain PyTorch loop, then serving against the registered champions
# (run `make run` or a benchmark profile first).
bench: $(STAMP)
	$(BIN)/python -m benchmarks.training --rounds 3 --max-batches 100
	$(BIN)/python -m benchmarks.serving run --threads 2 --memory
	$(BIN)/python -m benchmarks.translation --threads 2
	$(BIN)/python -m benchmarks.generation --threads 2

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The MLflow UI on the embedded store; first prints the link to each task's runs view (sorted by its metric).
UI_PORT ?= 5000
ui: $(STAMP)
	SEQOPS_MLFLOW_UI_URL=http://127.0.0.1:$(UI_PORT) $(BIN)/python -m flows.links
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow.db \
		--host 127.0.0.1 --port $(UI_PORT) --workers 1

# The UI must be told its API's port, or every page waits for the default one and fails.
PREFECT_PORT ?= 4200
prefect-ui: $(STAMP)
	PREFECT_HOME=$(CURDIR)/.seqops/prefect PREFECT_UI_API_URL=http://127.0.0.1:$(PREFECT_PORT)/api \
		$(BIN)/prefect server start --host 127.0.0.1 --port $(PREFECT_PORT)

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
