# Two commands do everything on a fresh machine with Python 3.11+ (and Node.js for make test):
#   make run    create the virtualenv, migrate, start both services, restarting any that dies
#               (Ctrl-C stops them all)
#   make test   the same set-up and AsyncAPI's npm tools (npm ci), then every test
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
# Defined before the rules that name it: a prerequisite is expanded when its rule is read.
NODE_INSTALLED := node_modules/.installed
PRODUCT_PORT ?= 3000
ORDER_PORT ?= 4000
export PRODUCT_PORT ORDER_PORT
PRODUCT_ADDRESS = $(or $(PRODUCT_HOST),127.0.0.1):$(PRODUCT_PORT)
ORDER_ADDRESS = $(or $(ORDER_HOST),127.0.0.1):$(ORDER_PORT)

.PHONY: help run check-ports test migrate generate lint format clean bench soak bench-relay contract contract-events debian-tools locust locust-stack lock token

# One line per target: the `## ` comment after its name.
help:  ## this list
	@grep -hE '^[a-z][a-zA-Z_/.-]*:.*## ' $(MAKEFILE_LIST) | \
		awk -F ':.*## ' '{ printf "  make %-14s %s\n", $$1, $$2 }'

# Every package at the version, and with the hashes, of the lock files (make lock refreshes them).
LOCK := requirements.lock
DEV_LOCK := requirements-dev.lock
PIP := $(BIN)/python -m pip --disable-pip-version-check

$(INSTALLED): pyproject.toml $(LOCK) $(DEV_LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet --require-hashes -r $(DEV_LOCK)
	$(PIP) install --quiet --no-deps -e .
	touch $@

# The newest versions pyproject.toml allows, pinned with their hashes: the services' own
# (requirements.lock, which the image installs) and with the development tools on top.
PIP_COMPILE := $(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	--no-emit-index-url --no-emit-find-links
lock: $(INSTALLED)  ## refresh requirements*.lock: the newest allowed versions, hashed
	$(PIP_COMPILE) --upgrade -o $(LOCK) pyproject.toml
	$(PIP_COMPILE) --upgrade --extra dev -c $(LOCK) -o $(DEV_LOCK) pyproject.toml

check-ports: $(INSTALLED)  ## fail, naming port and holder, if a port make run needs is taken
	@$(BIN)/python -m devstack.ports

migrate: $(INSTALLED)  ## both services' databases to the newest schema
	$(BIN)/python -m product_service.migrate
	$(BIN)/python -m order_service.migrate

# Refuses to start (and touches nothing) while a port it needs is taken: devstack/ports.py.
run: check-ports migrate  ## venv, migrate, both services and workers in the foreground (Ctrl-C stops)
	@echo "product-service  http://$(PRODUCT_ADDRESS)  (Swagger UI: http://$(PRODUCT_ADDRESS)/ui/)"
	@echo "order-service    http://$(ORDER_ADDRESS)  (Swagger UI: http://$(ORDER_ADDRESS)/ui/)"
	@echo "metrics          http://$(PRODUCT_ADDRESS)/metrics, http://$(ORDER_ADDRESS)/metrics (workers: port + 1)"
	@echo "a token with every scope, for 24 h (make token prints another):"
	@$(BIN)/python -m service_kit.http.dev_tokens
	$(BIN)/python -m devstack.supervise Procfile

# A bearer token for the running configuration, alone on the last line: every scope, or SCOPES;
# for the subject `developer`, or SUBJECT.
SCOPES ?=
SUBJECT ?= developer
token: $(INSTALLED)  ## print a bearer token with every scope (SCOPES="orders:read": those; SUBJECT=…)
	@$(BIN)/python -m service_kit.http.dev_tokens --scopes "$(SCOPES)" --subject "$(SUBJECT)"

test: $(INSTALLED) $(NODE_INSTALLED) debian-tools  ## ruff, then every test (unit, integration, end-to-end, contract, manifests)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

# AsyncAPI's own tooling, at the versions of package-lock.json: its parser validates
# asyncapi/events.yaml (tests/test_event_contract.py), its React component renders it.
$(NODE_INSTALLED): package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $@

# The event contract for people: AsyncAPI's React component on asyncapi/events.yaml.
docs/events.html: asyncapi/events.yaml $(NODE_INSTALLED) $(INSTALLED)  ## render the event contract (AsyncAPI's React component)
	$(BIN)/python -m contract_tests.render_events $@

# Debian's packages the tests drive: Chromium for the Swagger UI browser test (through
# Playwright; no browser download), Prometheus for the scrape test, kubectl to render infra/k8s.
DEBIAN_TOOLS := /usr/bin/chromium:chromium /usr/bin/prometheus:prometheus /usr/bin/kubectl:kubectl
debian-tools:  ## install Chromium, Prometheus, kubectl for the tests (as root)
	@missing=$$(for tool in $(DEBIAN_TOOLS); do test -x $${tool%%:*} || echo $${tool##*:}; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's $$missing for the tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends $$missing >/dev/null; \
	  else \
	    echo "note: $$missing cannot be installed here; the tests that need them will skip"; \
	  fi; fi

# Generated from the specs and committed: the inter-service clients (tests/test_generated_clients.py
# fails when they differ from a fresh generation) and RabbitMQ's definitions (tests/test_infra.py).
generate: $(INSTALLED)  ## regenerate the inter-service clients and RabbitMQ's definitions
	$(BIN)/python -m service_kit.messaging.broker_definitions > infra/rabbitmq/definitions.json
	cp infra/rabbitmq/definitions.json infra/k8s/overlays/dev/rabbitmq-definitions.json
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/openapi-python-client generate --meta none \
		--path openapi/product.yaml --output-path order_service/generated_product_client \
		--config openapi/client-generator.yaml --overwrite --fail-on-warning
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/openapi-python-client generate --meta none \
		--path openapi/order.yaml --output-path product_service/generated_order_client \
		--config openapi/client-generator.yaml --overwrite --fail-on-warning

# Every password of the compose stack, random, generated once (docker compose reads infra/.env).
infra/.env:  ## random passwords for docker compose (and infra/jwks.json)
	$(PYTHON) infra/generate_env.py $@

# The same for Kubernetes' dev overlay (infra/k8s/overlays/dev), with each service's URLs.
infra/k8s/overlays/dev/.env:  ## the same for the Kubernetes dev overlay
	$(PYTHON) infra/generate_env.py $@ --k8s-dev

# Schemathesis against the running stack; CONTRACT_EXAMPLES sets the length of the run.
CONTRACT_EXAMPLES ?= 100
contract: $(INSTALLED)  ## a long Schemathesis run against the running stack (CONTRACT_EXAMPLES)
	CONTRACT_EXAMPLES=$(CONTRACT_EXAMPLES) $(BIN)/python -m contract_tests.run

# The event fuzzer against the real consumers on this machine's MariaDB and RabbitMQ, longer than
# make test's fixed-seed pass; EVENT_EXAMPLES per event type.
EVENT_EXAMPLES ?= 300
EVENT_SEED ?=
contract-events: $(INSTALLED)  ## a long event fuzzing run on MariaDB/RabbitMQ (EVENT_EXAMPLES, EVENT_SEED)
	$(BIN)/python -m contract_tests.event_fuzz --examples $(EVENT_EXAMPLES) \
		$(if $(EVENT_SEED),--seed $(EVENT_SEED))

# The order hot path on the real MariaDB (durable), Redis and RabbitMQ: prints a table and
# writes perf/reports/bench-<time>.json.
bench: $(INSTALLED)  ## POST /orders' highest held rate on MariaDB, Redis, RabbitMQ
	$(BIN)/python -m perf.bench

# POST /orders held RATE/s for MINUTES with the system's state recorded every second (perf/soak.py).
RATE ?= 1000
MINUTES ?= 10
soak: $(INSTALLED)  ## POST /orders held RATE/s for MINUTES, recorded second by second
	$(BIN)/python -m perf.soak --rate $(RATE) --minutes $(MINUTES)

# A Locust scenario against a running stack (make run): SCENARIO=seed-1000, seed-2000, reads, mixed.
# LOCUST_PROCESSES > 1: a master and that many worker processes (the generator's own CPU).
SCENARIO ?= seed-1000
LOCUST_TIME ?= 60s
LOCUST_PROCESSES ?= 1
locust: $(INSTALLED)  ## a Locust scenario against a running stack (SCENARIO=…)
	mkdir -p perf/reports
	SCENARIO=$(SCENARIO) TOKEN=$${TOKEN:-$$($(BIN)/python -m service_kit.http.dev_tokens 2>/dev/null)} \
		$(BIN)/locust -f perf/locustfile.py --headless --only-summary \
		$$([ "$(LOCUST_PROCESSES)" -gt 1 ] && echo --processes $(LOCUST_PROCESSES)) \
		--users 10 --spawn-rate 10 --run-time $(LOCUST_TIME) \
		--csv perf/reports/locust-$(SCENARIO) --html perf/reports/locust-$(SCENARIO).html

# The outbox relay's durable publishing rate on the real MariaDB + RabbitMQ of this machine.
# The same scenario against the real stack started for it on this machine's MariaDB, Redis and
# RabbitMQ (as make bench does); reports in perf/reports/.
locust-stack: $(INSTALLED)  ## the same against a stack started for it
	$(BIN)/python -m perf.locust_stack $(SCENARIO) --run-time $(LOCUST_TIME)

bench-relay: $(INSTALLED)  ## the outbox relay's publishing rate
	$(BIN)/python perf/relay_benchmark.py

lint: $(INSTALLED)  ## ruff check and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(INSTALLED)  ## ruff fix and format
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:  ## remove the venv, var/ and caches
	rm -rf $(VENV) var .pytest_cache node_modules
