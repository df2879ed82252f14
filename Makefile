# Entry points of the Purbalingga Smart City platform. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help
# uv on PATH, else the one pip installed (pyenv may need a rehash before its shim exists).
UV ?= $(shell command -v uv >/dev/null 2>&1 && echo uv || echo python3 -m uv)

.PHONY: help install up down kafka-up kafka-down topics protos protos-check lint test test-unit fmt

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

install: ## Install uv, the locked Python environment and the Kafka jars
	@bash scripts/install.sh

up: install kafka-up topics ## Bring the platform up locally (Kafka and its topics)

down: kafka-down ## Stop everything `make up` started

kafka-up: ## Start the local Kafka broker (KRaft) unless KAFKA_BOOTSTRAP_SERVERS points elsewhere
	@bash deploy/local/kafka.sh up

kafka-down: ## Stop the local Kafka broker
	@bash deploy/local/kafka.sh down

topics: ## Create or update the catalogue's topics (idempotent)
	@$(UV) run --frozen python -m smartcity.topics create

protos: ## Regenerate the Python code of protos/ into libs/smartcity/v1
	@bash scripts/gen_protos.sh

protos-check: ## Fail when the generated code is stale
	@bash scripts/gen_protos.sh --check

lint: install protos-check ## ruff, mypy and buf lint
	$(UV) run --frozen ruff check .
	$(UV) run --frozen mypy libs services tests bench
	$(UV) run --frozen buf lint

fmt: ## Format the Python code
	$(UV) run --frozen ruff format . && $(UV) run --frozen ruff check --fix .

test-unit: install ## Fast tests: domain logic only, no broker
	$(UV) run --frozen pytest -m "not kafka and not e2e" -q

test: install kafka-up topics ## All tests, against a real local Kafka broker
	$(UV) run --frozen pytest -q
