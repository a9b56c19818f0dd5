# Landlord: two commands on a fresh machine with Python >= 3.11.
#   make run   - virtualenv, install, migrate the embedded SQLite database, seed, serve
#   make test  - virtualenv, install, run the whole test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8000
SEED_SCALE ?= 0.02
STAMP  := $(VENV)/.installed
APPS   := config common clusters leasing billing reclaim webhooks

.PHONY: help install run serve test browser loadgen lint format bench validate worker beat clean

help:
	@echo "make run    - install, migrate, seed the demo and serve on http://127.0.0.1:$(PORT)"
	@echo "make test   - install and run the whole test suite"
	@echo "make lint   - ruff, migrations check, deploy check, mypy (every app), bandit"
	@echo "make bench  - benchmarks (PostgreSQL: set DATABASE_URL)"
	@echo "make validate - measure a real all-reduce over emulated links (root, torch) and check the model"
	@echo "               (GRID=quick, about 4 minutes; GRID=full, the committed grid, about 12)"
	@echo "make worker / make beat - Celery worker / the single beat process"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall whenever the dependency list changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo --scale $(SEED_SCALE)
	@echo
	@PORT=$(PORT) $(BIN)/python manage.py demo_login
	@echo
	$(BIN)/python manage.py runserver 127.0.0.1:$(PORT)

serve: install
	$(BIN)/python manage.py runserver 127.0.0.1:$(PORT)

test: install browser
	$(BIN)/python -m pytest

# $(call os_package,COMMAND,PACKAGE,WHAT FOR,OTHERWISE): install an operating system package
# when its command is missing and we can (root with apt); otherwise say what happens without it.
os_package = @command -v $(1) >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing $(2) (operating system package) for $(3)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(2) >/dev/null; \
	  else echo "$(4)"; fi; }

# Browser tests drive the operating system's Chromium. Installed when we can (root with apt);
# elsewhere those tests skip with a message, unless REQUIRE_BROWSER=1 (CI) makes them fail.
browser:
	$(call os_package,chromium,chromium,the browser tests,chromium not installed: browser tests will be skipped)

# The API benchmark drives its load with wrk (C, event loop: a Python client on the same cores
# would be slower than the server it measures). Installed like Chromium.
loadgen:
	$(call os_package,wrk,wrk,the API benchmark,wrk not installed (Debian: apt-get install wrk): bench_api will stop)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python manage.py makemigrations --check --dry-run
	DJANGO_SETTINGS_MODULE=config.settings.production SECRET_KEY=$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(64))') \
		ALLOWED_HOSTS=landlord.example $(BIN)/python manage.py check --deploy --fail-level WARNING
	$(BIN)/mypy $(APPS)
	$(BIN)/bandit -q -r $(APPS) -x '*/migrations/*' --severity-level medium

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install loadgen
	$(BIN)/python bench/run.py

# Measure a real all-reduce (torch gloo) between network namespaces over emulated links, then
# check the performance model against those figures. Without root/netns/torch the harness says
# so and the check runs on the committed measurements (bench/data/allreduce_measurements.csv).
# GRID=quick (about 4 minutes on two cores) or GRID=full (the committed grid, about 12).
VALIDATE_CSV ?= artifacts/allreduce_measurements.csv
GRID ?= quick
validate: install
	$(BIN)/python -m pip install --quiet -e '.[validate]' || echo "torch not installed: measuring is skipped"
	mkdir -p artifacts
	$(BIN)/python bench/allreduce_harness/run.py --grid $(GRID) --out $(VALIDATE_CSV)
	ALLREDUCE_CSV=$(VALIDATE_CSV) ALLREDUCE_PLOT=artifacts/allreduce_validation.png \
		$(BIN)/pytest -q -s -p no:randomly tests/perfmodel/test_validation.py

worker: install
	$(BIN)/celery -A config worker --loglevel INFO

beat: install
	$(BIN)/celery -A config beat --loglevel INFO

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles .pytest_cache .ruff_cache .mypy_cache
