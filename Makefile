# The two commands a newcomer needs: `make demo` and `make test`.
# Each sets itself up: a virtualenv in .venv, the project with its test extra, and git-lfs.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest bench setup git-lfs clean

demo: setup
	$(BIN)/python -m devtools.demo

test: setup lint typecheck pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

pytest: setup
	$(BIN)/pytest

# Not part of `make test`: about 20 min on a 2-core box. The AWS CLI and giftless (the peer: git-lfs's
# own HTTP path) go into venvs of their own (.venv/awscli, .venv/giftless, made on first use):
# their pins must not reach the project's venv. The agent's modules are byte-compiled first, as
# a pip install would leave them (PYTHONDONTWRITEBYTECODE would otherwise make every agent
# start compile them).
# Flags: make bench BENCH_ARGS="--size-mib 256 --rounds 3 --big-mib 0"
BENCH_ARGS ?=
bench: setup
	$(BIN)/python -m pip install -q -e '.[test,bench]'
	$(BIN)/python -m compileall -q lfs_agent
	$(BIN)/python -m bench.run $(BENCH_ARGS)

setup: $(STAMP) git-lfs

git-lfs:
	@sh devtools/ensure-git-lfs.sh

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) *.egg-info .mypy_cache .ruff_cache .pytest_cache
