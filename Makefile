# Two commands on a fresh machine: `make run` and `make test`. Everything they need is installed here.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
PYTHON ?= python3
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
# Debian packages `make run` needs: the documents worker renders PDFs with WeasyPrint (Pango, HarfBuzz's subsetter)
# in DejaVu, the font its stylesheet names and embeds.
RUN_PACKAGES := libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core
# Debian packages only the suite needs: Chromium drives the admin's browser tests; poppler-utils (pdftotext, pdfinfo,
# pdffonts) reads the PDFs the documents tests write.
TEST_PACKAGES := chromium poppler-utils

.PHONY: install install-test run-deps test-deps apt-packages redis services run test test-fast lint format bench clean

## The platform's own dependencies (what `make run` needs); `install-test` adds the suite's, linters' and benches'.
install: $(STAMP)

install-test: $(TEST_STAMP)

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $(STAMP)

$(TEST_STAMP): pyproject.toml $(STAMP)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(TEST_STAMP)

## System packages: run-deps for `make run`, test-deps for the suite (both installed only when missing).
run-deps:
	@$(MAKE) --no-print-directory apt-packages PACKAGES="$(RUN_PACKAGES)"

test-deps:
	@$(MAKE) --no-print-directory apt-packages PACKAGES="$(RUN_PACKAGES) $(TEST_PACKAGES)"

apt-packages:
	@missing=""; for p in $(PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

## Redis on 127.0.0.1:6379, installed and started when absent: all that `make run` needs besides Python.
redis:
	@bash .ci/redis

## Redis and PostgreSQL (started when they do not answer): what the suite and the benchmarks need.
services:
	@bash .ci/services

## Start every process of the platform on the embedded defaults (SQLite, file email backend).
run: install run-deps redis
	$(BIN)/jobs migrate
	@echo "Admin will be at http://127.0.0.1:$${ADMIN_PORT:-8500}/admin/queues"
	$(BIN)/jobs dev

## The whole suite against the real Redis and PostgreSQL.
test: install-test test-deps services
	$(BIN)/pytest

test-fast: install-test
	$(BIN)/pytest tests/unit

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install-test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install-test services
	@for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
