# Tessera: `make run` serves the demo, `make test` runs the whole suite. Both set up .venv.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test test-services lint bench migrate demo serve clean screenshots

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet ".[dev]"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

migrate: install
	$(PY) manage.py migrate --noinput

demo: migrate
	$(PY) manage.py load_demo

# Development only, and the only place DEBUG is turned on (for run and the migrate and
# load_demo steps it depends on); everything else runs with production defaults.
run: export DJANGO_DEBUG ?= 1
run: demo
	@case "$$DJANGO_DEBUG" in 1|[Tt]rue|[Yy]es|[Oo]n) \
	  echo "make run: DEBUG is on (DJANGO_DEBUG=$$DJANGO_DEBUG): a development server, never for production" >&2;; esac
	$(PY) manage.py runserver $(HOST):$(PORT)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache

test: install lint
	$(PY) -m pytest -p no:cacheprovider $(PYTEST_ARGS)

# Refresh the pictures in docs/screenshots/ (the browser tests write them only when asked).
screenshots: install
	TESSERA_SCREENSHOTS=1 $(PY) -m pytest -p no:cacheprovider -m browser $(PYTEST_ARGS)

# The same suite against the local PostgreSQL and Redis (the services profile).
# Ordinary tests stay eager; tests marked `worker` get a real Celery worker (tests/services.py).
test-services: install
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test} \
	CELERY_BROKER_URL=$${CELERY_BROKER_URL:-redis://127.0.0.1:6379/0} \
	CELERY_TASK_ALWAYS_EAGER=true \
	$(PY) -m pytest -p no:cacheprovider $(PYTEST_ARGS)

# A deployment on this machine, all from environment variables (cms/serve.py, docs/operations.md):
# gunicorn × WEB_CONCURRENCY, Celery worker × CELERY_WORKERS and one beat when CELERY_BROKER_URL is set.
serve: install
	$(PY) -m cms.serve

# Benchmarks talk plain HTTP to their own throwaway servers, with DEBUG off.
bench: export DJANGO_SECRET_KEY ?= bench-only-not-secret-$(shell echo $$PWD | cksum | cut -d' ' -f1)-0123456789abcdefghijklmnopqrstuvwxyz
bench: export TESSERA_HTTPS ?= false
bench: migrate
	$(PY) bench/run_all.py $(BENCH_ARGS)  # BENCH_ARGS=--soak adds the soak test

clean:
	rm -rf $(VENV) db.sqlite3 media staticfiles
