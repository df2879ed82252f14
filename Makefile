# Entry points of the Purbalingga Smart City platform. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help
# uv on PATH, else the one pip installed (pyenv may need a rehash before its shim exists).
UV ?= $(shell command -v uv >/dev/null 2>&1 && echo uv || echo python3 -m uv)

.PHONY: help install up down status ops-tools ops-check ops-generate images kafka-up kafka-down topics protos protos-check lint test test-unit fmt

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

install: ## Install uv, the locked Python environment and the Kafka jars
	@bash scripts/install.sh

up: install ## Bring the whole city up: Kafka, topics, every service, the simulators
	@$(UV) run --frozen python deploy/local/city.py up

down: ## Stop everything `make up` started (services, simulators, Kafka)
	@$(UV) run --frozen python deploy/local/city.py down

status: ## What runs, with pids and memory
	@$(UV) run --frozen python deploy/local/city.py status

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

lint: install protos-check ## ruff, mypy, the import contracts and buf lint
	$(UV) run --frozen ruff check .
	$(UV) run --frozen mypy libs tests deploy/local/city.py deploy/k8s deploy/monitoring $(wildcard bench/*.py)
	@# One run per service (and client): their tests/ folders would otherwise clash as modules.
	@for svc in services/*/ clients/*/; do echo "mypy $$svc"; $(UV) run --frozen mypy "$$svc" || exit 1; done
	$(UV) run --frozen lint-imports
	$(UV) run --frozen buf lint

fmt: ## Format the Python code
	$(UV) run --frozen ruff format . && $(UV) run --frozen ruff check --fix .

test-unit: install ## Fast tests: domain logic only, no broker
	$(UV) run --frozen pytest -m "not kafka and not e2e" -q

ops-tools: ## Install promtool (Debian's prometheus package) and kustomize (Go module proxy)
	@bash scripts/install_ops_tools.sh

ops-check: install ops-tools ## Render and validate the manifests, promtool rules and their tests, dashboards
	$(UV) run --frozen pytest tests/ops -q

ops-generate: ## Regenerate KafkaTopics, the PrometheusRule and the dashboards from their sources
	$(UV) run --frozen python deploy/k8s/generate_topics.py
	$(UV) run --frozen python deploy/k8s/generate_prometheusrule.py
	$(UV) run --frozen python deploy/monitoring/generate_dashboards.py

images: ## Build the four service images (deploy/docker/Dockerfile); PRINT=1 only prints the commands
	@bash scripts/build_images.sh $(if $(PRINT),--print)

test: install ops-tools kafka-up topics ## All tests, against a real local Kafka broker and real device servers
	@bash scripts/install_edge_tools.sh
	$(UV) run --frozen pytest -q
