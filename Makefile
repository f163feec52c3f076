# Set-up and the project's two main jobs. Every target creates and uses .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench lint clean

# pyproject.toml declares compatible ranges; constraints.txt holds the exact set the tests pass with.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -c constraints.txt -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)  ## generate synthetic RAVDESS, prepare it, train and evaluate the study models
	$(BIN)/emovid demo --out demo_output

test: $(STAMP)  ## run the test suite
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/mypy

clean:
	rm -rf $(VENV) demo_output
