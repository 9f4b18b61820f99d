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

.PHONY: test
test: ## Every test: unit, property and integration, on SQLite and PostgreSQL
	@command -v cargo-nextest >/dev/null || $(CARGO) install --locked cargo-nextest
	$(CARGO) nextest run --locked --profile ci --all-targets

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
