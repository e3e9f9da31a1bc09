# dbapi: `make run` serves the embedded default on 127.0.0.1:8000 (or HOST and PORT);
# `make test` runs every check.
# Both set themselves up (virtualenv, packages) on a fresh machine with Python 3.11.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python

# Where `make run` serves: `make run PORT=8300`, `make run HOST=0.0.0.0 PORT=8300`.
HOST ?= 127.0.0.1
PORT ?= 8000

# The suite runs against the real servers on this machine; pytest creates its own databases.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/dbapi
TEST_REDIS_URL ?= redis://127.0.0.1:6379/1
# A second, named database, so the suite exercises actions that run elsewhere than `default`.
TEST_DATABASE_URL_REPORTING ?= $(TEST_DATABASE_URL)_reporting
# pytest-xdist workers (most tests wait on servers they start, so three overlap well on two cores).
# Each worker has PostgreSQL databases of its own (pytest-django's `_gw<N>` suffix) and a Redis
# database of its own, the Nth of TEST_REDIS_DBS (tests/settings.py): 1, 13 and 15 by default,
# never the benchmarks'. TEST_WORKERS=0 runs in one process, on TEST_REDIS_URL's database.
TEST_WORKERS ?= 3
TEST_REDIS_DBS ?= 1,13,15
PYTEST_ARGS ?=

.PHONY: run test checks lint check-django check-system check-migrations check-schema services install install-dev migrate messages compilemessages bench bench-grpc bench-login-flood clean protos

run: install migrate compilemessages
	$(PY) manage.py runserver $(HOST):$(PORT)

test: export DATABASE_URL = $(TEST_DATABASE_URL)
test: export REDIS_URL = $(TEST_REDIS_URL)
test: export DATABASE_URL_REPORTING = $(TEST_DATABASE_URL_REPORTING)
test: export TEST_REDIS_DBS := $(TEST_REDIS_DBS)
# Bytecode caches on, whatever the shell says: without them every pytest worker rewrites and
# compiles the test modules and plugins again (seconds of CPU each), every server a test starts
# compiles the project again.
test: export PYTHONDONTWRITEBYTECODE =
test: install-dev services
	$(MAKE) --no-print-directory -j4 --output-sync=target checks
	scripts/system-packages.sh nginx chromium pgbouncer redis-sentinel
	$(PY) -m pytest $(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadfile) $(PYTEST_ARGS)

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Every check but the tests: independent of each other, so `make test` runs them at once (each
# one's output kept whole).
checks: lint check-django compilemessages

check-django: check-system check-migrations check-schema

check-system: install-dev
	$(PY) manage.py check

check-migrations: install-dev
	$(PY) manage.py makemigrations --check --dry-run

check-schema: install-dev
	$(PY) manage.py spectacular --validate --fail-on-warn --file $(VENV)/schema.yaml

# Load benchmarks (never part of the tests): `make bench`, or `make bench BENCH="hits actions"`.
BENCH ?=
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/dbapi_bench
BENCH_REDIS_URL ?= redis://127.0.0.1:6379/2
bench: export BENCH_DATABASE_URL := $(BENCH_DATABASE_URL)
bench: export BENCH_REDIS_URL := $(BENCH_REDIS_URL)
bench: export DATABASE_URL = $(BENCH_DATABASE_URL)
bench: export REDIS_URL = $(BENCH_REDIS_URL)
bench: install-dev
	scripts/system-packages.sh wrk
	$(PY) scripts/services.py
	$(PY) -m bench.run $(BENCH)

# The actions over gRPC (one channel) against HTTP (a new connection per call), then 100,000
# streamed rows: calls/s, p99, server CPU per call, rows/s and peak RSS (bench/rpc.py).
bench-grpc: export BENCH_DATABASE_URL := $(BENCH_DATABASE_URL)
bench-grpc: export BENCH_REDIS_URL := $(BENCH_REDIS_URL)
bench-grpc: export DATABASE_URL = $(BENCH_DATABASE_URL)
bench-grpc: export REDIS_URL = $(BENCH_REDIS_URL)
bench-grpc: install-dev
	$(PY) scripts/services.py
	$(PY) -m bench.rpc

# POST /actions/example/bar's p99 while 8 threads send wrong passwords to /api/v1/auth/token from
# one address, against its p99 without them, same run (bench/login_flood.py).
bench-login-flood: export BENCH_DATABASE_URL := $(BENCH_DATABASE_URL)
bench-login-flood: export BENCH_REDIS_URL := $(BENCH_REDIS_URL)
bench-login-flood: export DATABASE_URL = $(BENCH_DATABASE_URL)
bench-login-flood: export REDIS_URL = $(BENCH_REDIS_URL)
bench-login-flood: install-dev
	scripts/system-packages.sh wrk
	$(PY) scripts/services.py
	$(PY) -m bench.login_flood

# The gRPC modules generated from protos/*.proto are committed; this regenerates them after a
# .proto changes (tests/rpc/test_protos.py fails while they are stale).
protos: install-dev
	$(PY) scripts/generate_protos.py

# Translations (README "Languages"). The catalogues (locale/<language>/LC_MESSAGES/django.po) are
# committed; their compiled .mo files are not: `make run` and `make test` compile them (only those
# older than their .po), as the image build does. GNU gettext's msgfmt does the compiling.
MESSAGES_IGNORE := --ignore=.venv --ignore=tests --ignore=bench --ignore=deploy --ignore=staticfiles

compilemessages: install
	scripts/system-packages.sh gettext:msgfmt
	$(PY) manage.py compilemessages $(MESSAGES_IGNORE) --verbosity 0

# After adding or changing a string a person reads: every catalogue gets the new msgids (empty)
# and loses the ones no longer used; translate the empty ones, then `make test` checks them all.
messages: install
	scripts/system-packages.sh gettext:msgfmt
	$(PY) manage.py makemessages --all $(MESSAGES_IGNORE) --add-location=file --no-obsolete

services: install-dev
	$(PY) scripts/services.py

migrate: install
	$(PY) manage.py migrate --noinput

install: $(VENV)/.installed-base
install-dev: $(VENV)/.installed-dev

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed-base: requirements/base.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements/base.txt
	touch $@

$(VENV)/.installed-dev: requirements/base.txt requirements/dev.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements/dev.txt
	touch $@ $(VENV)/.installed-base

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache
