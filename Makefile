# The README's commands: `make run` and `make test`. Everything builds on `make install`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-run
PYTEST_ARGS ?=
PORT ?= 8000

.PHONY: install run test system-packages test-sqlite test-postgres bench lint screenshots clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# Serving needs the package alone; the test tools (Playwright, pyarrow, datasets...) come with `install`.
$(RUN_STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $(RUN_STAMP)

run: $(RUN_STAMP)
	$(VENV)/bin/qistas demo
	@echo ""
	@echo "Open http://127.0.0.1:$(PORT)/ and sign in with an account above,"
	@echo "or call the API with:  curl -H 'Authorization: Bearer TOKEN' http://127.0.0.1:$(PORT)/api/v1/projects"
	$(VENV)/bin/qistas serve --host 127.0.0.1 --port $(PORT)

# The suite runs twice: on SQLite, then on PostgreSQL: a throwaway cluster of its own, or the
# server QISTAS_TEST_POSTGRES_URL names. What the system lacks is installed first when it can be.
test: install system-packages lint test-sqlite test-postgres

system-packages:
	bash tests/system_packages.sh

test-sqlite: install
	QISTAS_TEST_DB=sqlite $(PY) -m pytest $(PYTEST_ARGS)

# Database-independent parts (the quality library, the browser) run once, in the SQLite pass.
test-postgres: install
	QISTAS_TEST_DB=postgresql $(PY) -m tests.throwaway_postgres \
	  $(PY) -m pytest -m "not sqlite_only" tests/domain tests/api tests/cli tests/client $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check src tests benchmarks docs
	$(VENV)/bin/mypy

bench: install
	$(PY) benchmarks/run_all.py

# PNGs of every page and widget, in English and Arabic, into docs/screenshots/.
screenshots: install
	$(PY) docs/make_screenshots.py

clean:
	rm -rf $(VENV) build *.egg-info
