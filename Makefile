# The two commands of the README (make demo, make test), and the day-to-day ones. Each sets up
# .venv first (idempotent; the mmcv build is cached per user, see tools/setup_env.sh).
PYTHON := .venv/bin/python
PYTEST_ARGS ?=
# pytest-xdist: one worker per core, a test file per worker (a module's trained fixture built once), the longest
# files first (tests/conftest.py orders them; xdist's own reorder would undo it), the threads shared out among the
# workers and the tools they start (tests/conftest.py). PYTEST_WORKERS=0 runs in this process.
PYTEST_WORKERS ?= auto
PYTEST := $(PYTHON) -m pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder

.PHONY: setup demo demo-quick test test-fast lint

setup:
	@bash tools/setup_env.sh

demo: setup
	$(PYTHON) tools/demo.py

# The demo's steps, smaller (a few minutes): what CI runs, so the README's first command cannot break unseen.
demo-quick: setup
	$(PYTHON) tools/demo.py --quick

# Everything, slow end-to-end tests included (what CI runs).
test: setup
	$(PYTEST) $(PYTEST_ARGS)

# Day-to-day: the tests marked slow (end-to-end training runs, subprocess tools) left out.
test-fast: setup
	$(PYTEST) -m "not slow" $(PYTEST_ARGS)

lint: setup
	$(PYTHON) -m ruff check parnet_det tools tests configs
