# Clarion: the one entry point for people and CI.
#   make run    install what is needed, start Kafka + FerretDB + the four services
#   make test   install what is needed, lint, type-check, run every test layer
#   make test-browser  only the browser tests (Debian's chromium, driven by Playwright)
#   make bench  measure throughput and latency, write bench/results/latest.json

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
UV_VERSION := 0.13.8
UV := $(PYTHON) -m uv
INFRA := bash deploy/local/infra.sh
# The addresses infra.sh prints (empty when KAFKA_BOOTSTRAP_SERVERS / MONGODB_URL are set).
WITH_INFRA = eval "$$($(INFRA) env)" &&

.PHONY: help install tools browser infra-install infra-up infra-down infra-status topics run lint fmt \
        s3-install smtp-install test test-unit test-integration test-e2e test-browser bench bench-scale clean

help:
	@echo "make run     start everything locally (Ctrl-C stops it)"
	@echo "make test    lint, type-check and run unit, integration and end-to-end tests"
	@echo "make test-browser  only the browser tests (installs Debian's chromium if missing)"
	@echo "make bench   run the benchmark, print it, write bench/results/latest.json"
	@echo "make bench-scale  the hot operations empty vs with 1M users and 1M feed items stored"
	@echo "make infra-up / infra-down / infra-status   the embedded Kafka and FerretDB"

install: .venv/.synced

.venv/.synced: pyproject.toml uv.lock shared/pyproject.toml services/*/pyproject.toml \
              devtools/pyproject.toml
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet "uv==$(UV_VERSION)"
	$(UV) sync --frozen --all-packages
	@touch $@

# Linters that are not Python packages (Debian packages; CI runs as root on a clean clone).
tools:
	@command -v shellcheck >/dev/null 2>&1 || { \
	  [[ "$$(id -u)" == 0 ]] || { echo "shellcheck is missing: sudo apt-get install -y shellcheck" >&2; exit 1; }; \
	  echo "installing shellcheck (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck >/dev/null; }

# The browser the browser tests drive: Debian's chromium, launched by Playwright from
# /usr/bin/chromium (Playwright's own browser download is not used; CLARION_CHROMIUM
# points the tests elsewhere).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  [[ "$$(id -u)" == 0 ]] || { echo "chromium is missing: sudo apt-get install -y chromium" >&2; exit 1; }; \
	  echo "installing chromium (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# infra.sh's readiness probes run on the venv (python -m clarion_devtools.probe).
infra-install: install
	$(INFRA) install

# The tests' S3-compatible server (MinIO, built once into the cache infra.sh uses).
s3-install: install
	$(UV) run --frozen python -m clarion_devtools.s3server install

# The email tests' and the benchmark's SMTP server (Mailpit, built once into the same cache).
smtp-install: install
	$(UV) run --frozen python -m clarion_devtools.smtpserver install

infra-up: install
	$(INFRA) up

infra-down: install
	$(INFRA) down

infra-status: install
	$(INFRA) status

topics: install infra-up
	$(WITH_INFRA) $(UV) run --frozen python -m clarion_shared.topics create

# Starts the embedded infrastructure (unless KAFKA_BOOTSTRAP_SERVERS / MONGODB_URL are
# set), creates the topics, runs the services; Ctrl-C stops the services, and the
# infrastructure too when this run started it.
run: install
	$(UV) run --frozen python -m clarion_devtools.devstack

lint: install tools
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen mypy --strict shared/src services/*/src devtools/src tests bench
	@# Each test folder has its own conftest module: type-check them one at a time.
	for dir in shared/tests devtools/tests services/*/tests; do $(UV) run --frozen mypy --strict "$$dir"; done
	$(UV) run --frozen python -m clarion_devtools.shape
	find deploy -name '*.sh' -exec shellcheck {} +

fmt: install
	$(UV) run --frozen ruff check --fix .
	$(UV) run --frozen ruff format .

# Two passes: the unit tests (fakes only, CPU-bound: most of them build the gateway's
# app) on one worker per core, then the tests on the embedded Kafka, FerretDB and the
# service processes one at a time (they time crashes and share the machine's services).
UNIT := not integration and not e2e and not browser
TEST_WORKERS ?= $(shell nproc 2>/dev/null || echo 2)

test: lint browser infra-up s3-install smtp-install
	$(WITH_INFRA) $(UV) run --frozen pytest -q -p no:cacheprovider -n $(TEST_WORKERS) -m "$(UNIT)"
	$(WITH_INFRA) $(UV) run --frozen pytest -q -p no:cacheprovider -m "not ($(UNIT))"

test-unit: install
	$(UV) run --frozen pytest -q -n $(TEST_WORKERS) -m "$(UNIT)"

test-integration: install infra-up s3-install smtp-install
	$(WITH_INFRA) $(UV) run --frozen pytest -q -m integration

test-e2e: install infra-up smtp-install
	$(WITH_INFRA) $(UV) run --frozen pytest -q -m e2e

test-browser: install browser infra-up
	$(WITH_INFRA) $(UV) run --frozen pytest -q -m browser tests/browser

bench: install infra-up topics smtp-install
	$(WITH_INFRA) $(UV) run --frozen python -m bench

bench-scale: install infra-up topics
	$(WITH_INFRA) $(UV) run --frozen python -m bench.scale

clean:
	rm -rf .venv .mypy_cache .ruff_cache
