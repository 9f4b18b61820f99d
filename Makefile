# randomize — developer and operator commands. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

CARGO ?= cargo
BIN := target/debug/randomize
# Tests need PostgreSQL; this is the shared development server (see README).
export TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test

.PHONY: help
help: ## List the targets
	@grep -E '^[a-zA-Z_/-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

.PHONY: build
build: ## Build the debug binary
	$(CARGO) build --locked

.PHONY: run
run: build ## Migrate and serve on the SQLite default at http://localhost:5000
	$(BIN) migrate
	$(BIN) serve

.PHONY: dev
dev: ## Serve with auto-reload on source changes (installs cargo-watch if missing)
	@command -v cargo-watch >/dev/null || $(CARGO) install --locked cargo-watch
	$(CARGO) watch -x 'run -- migrate' -x 'run -- serve'

.PHONY: test test-rust test-contract test-browser
test: test-rust test-contract test-browser ## Every test: Rust suites on SQLite and PostgreSQL, API contract, browser

test-rust: ## Unit, property and integration tests (real server over HTTP), on SQLite and PostgreSQL
	@command -v cargo-nextest >/dev/null || $(CARGO) install --locked cargo-nextest
	$(CARGO) nextest run --locked --profile ci --all-targets

test-contract: build tools-contract ## schemathesis --checks all against the running server's /openapi.json
	tests/contract/run.sh $(BIN) $(VENV)/bin/st

test-browser: build tools-browser ## Swagger UI at /docs in headless Chromium (screenshot: target/browser/docs.png)
	tests/browser/run.sh $(BIN) $(NODE_TOOLS)/node_modules $(CHROMIUM) target/browser/docs.png

.PHONY: lint
lint: ## Formatting and clippy (warnings are errors)
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

.PHONY: fmt
fmt: ## Format the code
	$(CARGO) fmt --all

.PHONY: db_upgrade
db_upgrade: build ## Apply pending migrations to DATABASE_URL
	$(BIN) migrate

.PHONY: db_downgrade
db_downgrade: build ## Revert the newest migration on DATABASE_URL
	$(BIN) migrate --revert

.PHONY: db_status
db_status: build ## List applied and pending migrations
	$(BIN) migrate --status

.PHONY: migrations
migrations: ## Create an empty migration for both backends: make migrations name=add_thing
	@test -n "$(name)" || { echo "usage: make migrations name=what_it_does"; exit 2; }
	@stamp=$$(date -u +%Y-%m-%d-%H%M%S); \
	for backend in sqlite postgres; do \
		dir=migrations/$$backend/$${stamp}_$(name); mkdir -p $$dir; \
		printf -- '-- %s: %s (up)\n' "$$backend" "$(name)" > $$dir/up.sql; \
		printf -- '-- %s: %s (down: undo up.sql exactly)\n' "$$backend" "$(name)" > $$dir/down.sql; \
		echo "created $$dir"; \
	done

# ---- tools for the contract, browser and deployment checks (into .cache/, git-ignored) ----
CACHE := $(CURDIR)/.cache
VENV := $(CACHE)/venv
NODE_TOOLS := $(CACHE)/node
CHROMIUM ?= /usr/bin/chromium

$(VENV)/bin/st:
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check schemathesis==4.6.4 hypothesis==6.140.3

$(NODE_TOOLS)/node_modules/playwright-core/package.json:
	mkdir -p $(NODE_TOOLS)
	cd $(NODE_TOOLS) && npm install --silent --no-audit --no-fund --prefix . playwright-core@1.57.0

$(CHROMIUM):
	@command -v apt-get >/dev/null || { echo "install Chromium (Debian: apt-get install chromium) or set CHROMIUM="; exit 1; }
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null

.PHONY: tools-contract tools-browser
tools-contract: $(VENV)/bin/st ## Install schemathesis into .cache/venv
tools-browser: $(CHROMIUM) $(NODE_TOOLS)/node_modules/playwright-core/package.json ## Install Chromium + playwright-core

.PHONY: openapi
openapi: build ## Refresh the committed openapi.json from the code
	$(BIN) openapi > openapi.json
