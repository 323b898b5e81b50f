# The two commands of the README. Each sets up .venv first (idempotent; the
# mmcv build is cached per user, see tools/setup_env.sh).
PYTHON := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: setup demo test

setup:
	@bash tools/setup_env.sh

demo: setup
	$(PYTHON) tools/demo.py

test: setup
	$(PYTHON) -m pytest $(PYTEST_ARGS)
