# make run   - create .venv (Python 3.11), install, open the demo study at http://localhost:8501
#              (this computer only; `make run OPEN=1` serves it to the network, without login)
# make test  - install test dependencies and run the whole pytest suite
# make test-quick - the same without the slow, real-browser and deployment tests
# make screenshots [SCREENSHOTS_DIR=DIR] - a full-height PNG of every page at 1600 px width
#              (default build/screenshots), with the layout problems of each page printed
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8501
SCREENSHOTS_DIR ?= build/screenshots
OPEN   ?=
ifeq ($(OPEN),1)
ADDRESS := 0.0.0.0
RUN_ENV := CART_OPEN_NETWORK=1
RUN_OPTS := --server.allowedHosts '*'
else
ADDRESS := 127.0.0.1
RUN_ENV :=
RUN_OPTS :=
endif

.PHONY: run test test-quick lint bench bench-quick clean screenshots

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# the pinned requirements, then the project itself (editable: the checkout is the package)
$(VENV)/.runtime: requirements.txt pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

run: $(VENV)/.runtime
ifeq ($(OPEN),1)
	@echo "WARNING: serving on every network interface WITHOUT A LOGIN: anyone who can reach"
	@echo "WARNING: this computer on port $(PORT) sees the study. For a shared server use deploy/."
endif
	$(RUN_ENV) $(BIN)/streamlit run app.py --server.address $(ADDRESS) --server.port $(PORT) $(RUN_OPTS)

test: $(VENV)/.dev
	$(BIN)/python -m pytest

test-quick: $(VENV)/.dev
	$(BIN)/python -m pytest -m "not slow and not browser and not deploy"

lint: $(VENV)/.dev
	$(BIN)/ruff check .

screenshots: $(VENV)/.dev
	$(BIN)/python tools/screenshots.py --out $(SCREENSHOTS_DIR)

bench: $(VENV)/.dev
	$(BIN)/python benchmarks/run_all.py

bench-quick: $(VENV)/.dev
	$(BIN)/python benchmarks/run_all.py --quick

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build
