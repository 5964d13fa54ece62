# Two commands: `make demo` and `make test`. Both create .venv when it is missing and
# install the package with its dependencies from the package registry first.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test setup bench bench-env clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required, found " + sys.version.split()[0]'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

setup: $(STAMP)

# the main job on a medium simulation (100 000 persons): large enough that the report's
# verdicts can be checked against the planted truth (about 8 minutes on 2 cores)
demo: $(STAMP)
	$(VENV)/bin/evaluering demo --scale medium

test: $(STAMP)
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MPLBACKEND=Agg $(PY) -m pytest -n 2 --dist loadgroup

# Benchmarks against the peer libraries: these live only in .venv-bench, never in .venv.
bench-env: $(STAMP)
	test -x .venv-bench/bin/python || $(PYTHON) -m venv .venv-bench
	.venv-bench/bin/python -m pip install --quiet -e . pyfixest linearmodels csdid differences wildboottest diff-diff lifelines

bench: bench-env
	for s in benchmarks/bench_*.py; do echo "== $$s"; .venv-bench/bin/python $$s || exit 1; done
	$(PY) benchmarks/collect_results.py

clean:
	rm -rf $(VENV) data/processed/* reports/* .pytest_cache
	touch data/processed/.gitkeep reports/.gitkeep
