# ghvault — `make test` and `make run` set everything up themselves (idempotent).
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
PY_STAMP := $(VENV)/.deps-installed
NODE_STAMP := node_modules/.deps-installed
SIM_SIZE ?= small
SIM_PORT ?= 8765

.PHONY: help deps system-deps test lint run sim bench bench-scale constraints clean image compose-test

help:
	@echo "make test   install what is missing, then run the test suite"
	@echo "make run    install what is missing, then run the embedded backup demo (RUNNER=local|docker)"
	@echo "make sim    serve the GitHub simulator (SIM_SIZE=tiny|small|medium, SIM_PORT=...)"
	@echo "make image  build the engine image ghvault:dev (docker, or podman installed if need be)"
	@echo "make compose-test  docker-compose.yaml up for real, one DAG run, down (slow; not in make test)"
	@echo "make lint   ruff"
	@echo "make bench  benchmarks against python-github-backup (slow; not part of make test)"
	@echo "make bench-scale  the cost curve by account size, tiny to large (slow)"

# Debian packages the tests need: git (with http-backend) and git-lfs; PostgreSQL (the
# real-scheduler tests run Airflow's metadata DB on a private cluster, as production does);
# Chromium (the trigger form is tested in a headless browser; Playwright drives this one,
# it downloads none).
SYSTEM_PACKAGES := git git-lfs postgresql chromium
system-deps:
	@command -v git-lfs >/dev/null 2>&1 && test -x "$$(git --exec-path)/git-http-backend" \
	  && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && command -v chromium >/dev/null 2>&1 || { \
	  echo "installing $(SYSTEM_PACKAGES) with apt-get"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null; }

$(PY_STAMP): requirements.txt requirements-dev.txt constraints.txt image/pyproject.toml operators/pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python 3.11+ is needed (PYTHON=$(PYTHON))"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --disable-pip-version-check -c constraints.txt -r requirements-dev.txt
	$(PIP) install -q --disable-pip-version-check -c constraints.txt --no-deps -e image -e operators
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

deps: system-deps $(PY_STAMP) $(NODE_STAMP)

test: deps
	$(VENV)/bin/pytest

# The engine image, with docker or podman (devtools/image.py says how it picks the base).
image:
	$(PYTHON) -m devtools.image

# docker-compose.yaml brought up with this machine's engine (podman and Debian's
# docker-compose installed when no Docker runs), one DAG run through the REST API, then
# torn down (devtools/compose_test.py). RUNNER=docker runs the backup in the engine image.
compose-test: $(PY_STAMP)
	RUNNER=$(or $(RUNNER),local) $(PY) -m devtools.compose_test

lint: $(PY_STAMP)
	$(VENV)/bin/ruff check .

sim: deps
	$(PY) -m tests.github_sim --size $(SIM_SIZE) --port $(SIM_PORT) --tls --ready-file .sim-ready.json

# RUNNER=docker: the backup runs as the engine image in docker or podman (the docker runner)
RUNNER ?= local
run: deps
	RUNNER=$(RUNNER) $(PY) -m devtools.embedded

bench: deps
	$(PY) -m bench

# The cost curve by account size (issue 17): bench/SCALE.md and bench/scale.png.
bench-scale: deps
	$(PY) -m bench --scale

# Re-resolve the pinned set after a requirements change (needs the package index).
constraints:
	rm -rf .constraints-venv && $(PYTHON) -m venv .constraints-venv
	.constraints-venv/bin/pip install -q -r requirements-dev.txt
	{ echo "# Frozen resolution of requirements-dev.txt on Python 3.11 (pip freeze). Regenerate with"; \
	  echo "# \`make constraints\` after changing a requirements file; commit the result."; \
	  .constraints-venv/bin/pip freeze --exclude-editable; } > constraints.txt
	rm -rf .constraints-venv

clean:
	rm -rf $(VENV) node_modules .pytest_cache .ruff_cache
