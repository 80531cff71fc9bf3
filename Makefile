# isackit: one command to set up and run the headline experiment, one to run the tests.
#   make demo        create .venv, install isackit (+ test, ray extras), run `isackit run`
#   make test        create .venv, install, run the whole test suite (tests + docstring examples)
#   make test-plain  a second venv with the plain install (`pip install -e .` + pytest: no ray,
#                    no click) runs the CLI smoke tests and imports every module under -OO
# PyTorch comes from constraints.txt (the CPU build pinned for this project's machines);
# on a machine with a GPU, drop `-c constraints.txt` to get PyPI's CUDA build instead.

PYTHON      ?= python3
VENV        ?= .venv
PLAIN_VENV  ?= .venv-plain
BIN         := $(VENV)/bin
STAMP       := $(VENV)/.isackit-installed
DEMO_ARGS   ?= --quick
# pytest-xdist workers: one per CPU core, at most 4 (each worker runs torch on one thread)
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); [ $$n -gt 4 ] && n=4; echo $$n)
PYTEST_ARGS ?= -q -n $(TEST_WORKERS) --dist worksteal

.PHONY: install demo test test-plain clean-venv

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -c constraints.txt torch
	$(BIN)/python -m pip install -c constraints.txt -e ".[test,ray]"
	@if $(BIN)/python -m pip list 2>/dev/null | grep -qi '^nvidia-'; then \
		echo "error: CUDA packages were installed into $(VENV); expected the CPU torch from constraints.txt" >&2; \
		exit 1; fi
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} $(BIN)/isackit run $(DEMO_ARGS)

test: $(STAMP)
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(BIN)/python -m pytest $(PYTEST_ARGS)

test-plain:
	test -x $(PLAIN_VENV)/bin/python || $(PYTHON) -m venv $(PLAIN_VENV)
	$(PLAIN_VENV)/bin/python -m pip install -q -c constraints.txt torch
	$(PLAIN_VENV)/bin/python -m pip install -q -c constraints.txt -e . pytest
	@if $(PLAIN_VENV)/bin/python -m pip list 2>/dev/null | grep -qi '^nvidia-'; then \
		echo "error: CUDA packages were installed into $(PLAIN_VENV)" >&2; exit 1; fi
	ISACKIT_PLAIN_INSTALL=1 OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} MPLBACKEND=Agg \
		$(PLAIN_VENV)/bin/python -m pytest -q -p no:cacheprovider tests/test_plain_install.py

clean-venv:
	rm -rf $(VENV) $(PLAIN_VENV)
