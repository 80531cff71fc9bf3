# isackit: one command to set up and run the headline experiment, one to run the tests.
#   make demo    create .venv, install isackit (+ test, ray extras), run `isackit run`
#   make test    create .venv, install, run the whole test suite
# PyTorch comes from constraints.txt (the CPU build pinned for this project's machines);
# on a machine with a GPU, drop `-c constraints.txt` to get PyPI's CUDA build instead.

PYTHON      ?= python3
VENV        ?= .venv
BIN         := $(VENV)/bin
STAMP       := $(VENV)/.isackit-installed
DEMO_ARGS   ?= --quick
PYTEST_ARGS ?= -q

.PHONY: install demo test clean-venv

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

clean-venv:
	rm -rf $(VENV)
