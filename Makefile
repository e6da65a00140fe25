# chatload: every target sets up what it needs on a fresh clone (Python >= 3.11 and make).
# Probed once (:=), quietly: a pyenv shim of a version it lacks prints a page to stderr.
ifeq ($(origin PYTHON),undefined)
PYTHON := $(shell for p in python3.12 python3.11 python3; do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 \
	&& { echo $$p; break; }; done)
endif
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install servers run test test-all lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "chatload needs Python >= 3.11 on PATH" >&2; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

## The real servers the replica tests and the pubsub bench start, and the Prometheus that
## scrapes a run in the tests (Debian's packages; the tests run them in private directories
## on 127.0.0.1). apt-get needs root.
servers:
	@missing=""; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null \
		|| missing="$$missing postgresql"; \
	command -v nats-server >/dev/null || test -x /usr/sbin/nats-server || missing="$$missing nats-server"; \
	command -v prometheus >/dev/null && command -v promtool >/dev/null || missing="$$missing prometheus"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "installing$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq$$missing >/dev/null; \
		else \
			echo "not installed:$$missing (as root: apt-get install$$missing); their tests skip" >&2; \
		fi; \
	fi

## The main job: a load test against the embedded simulated Coder server.
run: install
	$(BIN)/chatload run

lint: install
	$(BIN)/ruff check loadtest tests
	$(BIN)/ruff format --check loadtest tests
	$(BIN)/mypy

test: install servers lint
	$(BIN)/python -m pytest -q

## Everything, the slow tests (browser, soak) included.
test-all: install servers lint
	$(BIN)/python -m pytest -q -m ''

bench: install servers
	$(BIN)/chatload bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
