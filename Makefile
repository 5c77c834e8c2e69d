# Quick start:  make demo   (create .venv, install the core package only, run the baseline with plots)
#               make test   (create .venv if needed, install with dev extras, run all tests)
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed-dev
CORE    = $(VENV)/.installed-core

.PHONY: demo test test-quick install bench bench-quick bench-full gallery docs validation-docs lint clean regression-update

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall when the dependencies change.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# The demo needs the core package only (no browser driver, linters, Solara or EMA Workbench):
# a first contact installs what it uses. A dev install covers the core too.
$(CORE): $(BIN)/python pyproject.toml
	@if [ -f $(STAMP) ] && [ $(STAMP) -nt pyproject.toml ]; then :; \
	else $(BIN)/python -m pip install --quiet -e .; fi
	touch $(CORE)

install: $(STAMP)

demo: $(CORE)
	$(BIN)/python run.py run baseline --replicates 8 --workers 2

# The test files run on two processes (pytest-xdist): a file's tests stay on one, so its
# module fixtures are built once. Two even on one core: many tests wait on subprocesses.
XDIST = -n 2 --dist loadfile

test: $(STAMP)
	$(BIN)/python -m pytest $(XDIST)

# Unit, property and regression tests only (no statistical or end-to-end tests marked slow).
test-quick: $(STAMP)
	$(BIN)/python -m pytest $(XDIST) -m "not slow"

# Benchmarks: the working tree and a reference revision (BEFORE) measured in the same run.
# A scenario missing from a tree (syria_wide before it exists) is skipped with a message.
BEFORE ?= 2eea2af
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_model.py --before $(BEFORE) --scenario syria_wide
	$(BIN)/python benchmarks/bench_startup.py --before $(BEFORE)
	$(BIN)/python benchmarks/bench_sweep.py --before $(BEFORE)
	$(BIN)/python benchmarks/bench_explorer.py

bench-quick: $(STAMP)
	$(BIN)/python benchmarks/bench_model.py --quick --before $(BEFORE) --scenario syria_wide
	$(BIN)/python benchmarks/bench_startup.py --quick --before $(BEFORE)
	$(BIN)/python benchmarks/bench_sweep.py --quick --before $(BEFORE)
	$(BIN)/python benchmarks/bench_explorer.py --quick

# The real 10,240-run Sobol sweep of one-year runs on 2 workers (working tree; minutes to hours).
bench-full: $(STAMP)
	$(BIN)/python benchmarks/bench_sweep.py --full --no-memory --before $(BEFORE)

# The figures in README.md, from real runs: 50 replicates of the baseline, and the grid sweep.
gallery: $(STAMP)
	rm -rf results/gallery/baseline results/gallery/sweep_salary_mediation
	$(BIN)/python run.py run baseline --replicates 50 --workers 2 --out results/gallery/baseline
	$(BIN)/python run.py sweep sweep_salary_mediation --workers 2 --out results/gallery/sweep_salary_mediation
	rm -rf results/gallery/sweep_sobol_behaviour
	$(BIN)/python run.py sweep sweep_sobol_behaviour --dask local --workers 2 --out results/gallery/sweep_sobol_behaviour

# Regenerate docs/VALIDATION.md: 100 replicates at two root seeds, and the policy variants
# on common random numbers (about 15 minutes on 2 cores).
validation-docs: $(STAMP)
	$(BIN)/python run.py validate-patterns baseline --replicates 100 --seeds 20191101 9002 \
		--variants --docs --workers 2 --out results/validation-docs-$$(date -u +%Y%m%dT%H%M%SZ)

# Regenerate the parameter tables in docs/ODD.md from the schema.
docs: $(STAMP)
	$(BIN)/python -m sim.docs

lint: $(STAMP)
	$(BIN)/ruff check sim tests benchmarks run.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info

# Re-pin the regression figures (tests/regression/pinned.json) on purpose; prints what changed.
regression-update: $(STAMP)
	$(BIN)/python -m tests.regression.update
