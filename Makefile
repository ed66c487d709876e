# The two commands: `make run` and `make test`. Everything else is what they need.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HTMX_VERSION := 2.0.4
HTMX := crm/static/vendor/htmx.min.js
REDIS_URL ?= redis://127.0.0.1:6379/0
PG_TEST_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
export REDIS_URL

.PHONY: run test imports test-sqlite test-postgres setup system-packages services lint bench clean

run: setup
	@scripts/ensure-redis "$(REDIS_URL)"
	$(VENV)/bin/flask --app app db upgrade
	$(VENV)/bin/flask --app app crm ensure-admin --url http://127.0.0.1:$${PORT:-5000}/
	PORT=$${PORT:-5000} $(VENV)/bin/honcho start -f Procfile

# Both runs always happen, so one report shows every failure; any failure fails the target.
test: system-packages setup services
	@status=0; $(MAKE) imports || status=1; $(MAKE) test-sqlite || status=1; \
	  $(MAKE) test-postgres || status=1; exit $$status

# The layering, as import-linter contracts in pyproject.toml.
imports:
	$(VENV)/bin/lint-imports

test-sqlite:
	CRM_TEST_DB=sqlite $(VENV)/bin/pytest -q -p no:cacheprovider $(PYTEST_ARGS)

test-postgres:
	CRM_TEST_DB=postgresql CRM_TEST_PG_URL=$(PG_TEST_URL) $(VENV)/bin/pytest -q -p no:cacheprovider $(PYTEST_ARGS)

setup: $(VENV)/.installed $(HTMX)

$(VENV)/.installed: pyproject.toml
	@command -v python3 >/dev/null || scripts/apt-install python3 python3-venv
	@python3 -m venv --help >/dev/null 2>&1 || scripts/apt-install python3-venv
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q -U pip
	$(PIP) install -q -e '.[test]'
	touch $@

$(HTMX): Makefile
	@command -v npm >/dev/null || scripts/apt-install npm
	rm -rf build/npm && mkdir -p build/npm crm/static/vendor
	cd build/npm && npm install --silent --no-audit --no-fund --prefix . htmx.org@$(HTMX_VERSION)
	cp build/npm/node_modules/htmx.org/dist/htmx.min.js $(HTMX)

system-packages:
	@scripts/apt-install dovecot-imapd chromium openssl redis-server

services:
	@scripts/ensure-redis "redis://127.0.0.1:6379/0"
	@scripts/ensure-postgres

lint:
	$(VENV)/bin/ruff check crm workers tests bench

clean:
	rm -rf build $(VENV) crm/static/vendor
