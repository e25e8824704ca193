# Hot-Net — the commands. `make run` serves the demo; `make test` runs every test.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
FLASK := $(PY) -m flask --app wsgi

.PHONY: run test lint bench translations i18n-update install install-dev

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

translations: $(VENV)/.installed
	$(PY) -m babel.messages.frontend compile --statistics -d app/translations -D messages

# The demo runs in development mode: a random secret key is generated once into instance/.
run: export HOTNET_ENV = development
run: install translations
	$(FLASK) db upgrade
	$(FLASK) hotnet seed-demo --if-empty
	$(PY) -m app.devserver

test: install-dev translations lint
	$(PY) -m tests.run

# The layer contract (.importlinter, see docs/architecture.md) and ruff (ruff.toml).
lint: $(VENV)/.installed-dev
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check app tests bench wsgi.py

bench: install-dev translations
	$(PY) -m bench.run

i18n-update: $(VENV)/.installed
	$(VENV)/bin/pybabel extract -F babel.cfg -k _l -k lazy_gettext -o /tmp/hotnet-messages.pot .
	$(VENV)/bin/pybabel update -i /tmp/hotnet-messages.pot -d app/translations -D messages --no-fuzzy-matching
