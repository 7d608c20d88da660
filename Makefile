# Two commands: `make run` and `make test`. Everything else is set up on the way.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run db test lint typecheck pytest bench lock clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall when the project or the pinned versions change.
$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	@touch $(STAMP)

setup: $(STAMP)

db: setup
	@mkdir -p var
	$(BIN)/python -m bot db upgrade

run: db
	$(BIN)/python -m bot serve

lint: setup
	$(BIN)/ruff check .

typecheck: setup
	$(BIN)/mypy

# pytest exits 5 when it collected nothing: an empty run must not pass as green.
pytest: setup
	@$(BIN)/python -m pytest -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$rc

test: lint typecheck pytest

bench: setup
	$(BIN)/python -m bench

# Refresh constraints.txt from the current environment (after changing dependencies).
lock: setup
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e ' > constraints.txt

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

# --- Try it without a Teams tenant: the Microsoft 365 Agents Playground ---------------------------
# `make playground-bot` in one terminal (the bot in local mode, with tools/playground/bot.env over
# .env), `make playground` in another (the pinned playground from tools/playground, against it).
.PHONY: playground playground-bot playground-bot-supervisor playground-install

PLAYGROUND_DIR := tools/playground
PLAYGROUND := $(PLAYGROUND_DIR)/node_modules/.bin/agentsplayground
PLAYGROUND_STAMP := $(PLAYGROUND_DIR)/node_modules/.installed
PLAYGROUND_PORT ?= 56150
BOT_ENDPOINT ?= http://127.0.0.1:3978/api/messages
# The playground's own user, Alex Wilber (its built-in configuration; the pinned version's).
PLAYGROUND_USER_AAD_ID := 00000000-0000-0000-0000-0000000000020
# Headless (no browser opened; open the printed address yourself) where there is no display.
TEAMSAPPTESTER_BROWSER ?= $(if $(or $(DISPLAY),$(WAYLAND_DISPLAY),$(filter Darwin,$(shell uname -s))),,none)

$(PLAYGROUND_STAMP): $(PLAYGROUND_DIR)/package.json $(PLAYGROUND_DIR)/package-lock.json
	@command -v npm >/dev/null || { echo "make playground needs Node.js (18 or newer) and npm" >&2; exit 1; }
	cd $(PLAYGROUND_DIR) && npm ci --ignore-scripts --no-audit --no-fund
	@touch $@

playground-install: $(PLAYGROUND_STAMP)

# Telemetry to Microsoft is off (--disable-telemetry); its log goes to var/playground-tool.log.
playground: $(PLAYGROUND_STAMP)
	@$(PYTHON) -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=3)' \
	  "$(BOT_ENDPOINT:/api/messages=/healthz)" 2>/dev/null || { \
	  echo "No bot answers at $(BOT_ENDPOINT). Start it first, in another terminal:" >&2; \
	  echo "  make playground-bot    (local mode: no MicrosoftAppId, the playground's people as officers)" >&2; \
	  exit 1; }
	@mkdir -p var
	@echo "Playground: http://localhost:$(PLAYGROUND_PORT)  (bot: $(BOT_ENDPOINT); Ctrl-C stops it)"
	TEAMSAPPTESTER_BROWSER=$(TEAMSAPPTESTER_BROWSER) TEAMSAPPTESTER_LOGFILE=$(CURDIR)/var/playground-tool.log \
	  $(PLAYGROUND) start --app-endpoint $(BOT_ENDPOINT) --channel-id msteams \
	  --port $(PLAYGROUND_PORT) --disable-telemetry

# The bot for the playground: `make run` with tools/playground/bot.env over .env (local mode, its
# own var/playground.db, the playground's tenant and domain as the force's, no Graph).
define playground_bot
	@mkdir -p var
	@set -a; . $(PLAYGROUND_DIR)/bot.env; $(1) set +a; \
	  $(BIN)/python -m bot db upgrade && exec $(BIN)/python -m bot serve
endef

playground-bot: setup
	$(call playground_bot,)

# The same, with the playground's user also a listed supervisor (to register partner agencies).
playground-bot-supervisor: setup
	$(call playground_bot,OPSROOM_SUPERVISORS=$(PLAYGROUND_USER_AAD_ID);)
