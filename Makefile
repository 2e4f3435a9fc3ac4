# Masthead. `make run` starts everything locally; `make test` runs the suite and the linter.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench install migrate seed clean mjml-reference

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Masthead needs Python 3.11 or newer")'
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

.env:
	@echo "DEBUG=true" > .env
	@echo "SECRET_KEY=$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))')" >> .env
	@echo "Wrote .env for local development (DEBUG on, a fresh SECRET_KEY)."

migrate: $(STAMP) .env
	$(BIN)/python manage.py migrate --no-input

seed: migrate
	$(BIN)/python manage.py seed_demo

run: seed
	@echo ""
	@echo "  Site:       http://localhost:8000/"
	@echo "  Admin:      http://localhost:8000/admin/  (login printed above)"
	@echo "  Signup:     http://localhost:8000/subscribe/daily-brief/"
	@echo "  Mail:       every email sent lands in var/mail/ (one .eml per message) and at http://localhost:8000/dev/mail/"
	@echo "  Stop:       Ctrl-C stops all four processes."
	@echo ""
	$(BIN)/honcho start -f Procfile

# The official mjml (npm) the test suite validates and compares mrml's output with; without npm those tests skip.
mjml-reference:
	@if ! command -v npm >/dev/null 2>&1; then echo "npm not found: the tests against the official mjml will skip"; \
	elif [ ! tests/mjml/node_modules/.package-lock.json -nt tests/mjml/package-lock.json ]; then \
		npm ci --prefix tests/mjml --no-audit --no-fund --loglevel=error; fi

test: $(STAMP) mjml-reference
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf var/broker var/cache var/test.sqlite3
