# The two commands of the README: `make app` and `make test`. Both set up .venv on a fresh machine first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8501
ADDRESS ?= 127.0.0.1

.PHONY: setup app test test-all bench bench-browser lint pretrained beta-sweep clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

# `streamlit run app/streamlit_app.py`, with the first page prepared as soon as the server is up (app/serve.py).
# Listens on this machine only (ADDRESS=0.0.0.0 opens it to the network: see the README's "In a classroom").
# No source watcher, upload size and other server settings: app/serve.py SERVER_OPTIONS.
app: setup
	$(BIN)/python -m app.serve --server.port $(PORT) --server.address $(ADDRESS)

# TEST_WORKERS=2: one pytest-xdist worker per core, each test file whole on one worker; about 6-8.5 min instead of
# 9-10, but the suite's timed tests (a 24 MP photo decoded within the 2 s limit, ...) can miss beside the other
# worker: the default, the README's contract, runs them one at a time.
TEST_WORKERS ?= 0

test: setup
	$(BIN)/python -m pytest $(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadfile)

test-all: setup
	$(BIN)/python -m pytest -m ""

bench: setup
	$(BIN)/python -m vae_core.bench --metrics

# the classroom table, measured in headless Chromium against the app as `make app` starts it
bench-browser: setup
	$(BIN)/python benchmarks/browser.py

pretrained: setup
	$(BIN)/python -m vae_core.zoo

beta-sweep: setup
	$(BIN)/python -m vae_core.sweep

lint: setup
	$(BIN)/ruff check vae_core app tests

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
