# Everything runs in containers: Docker (with Compose) is all a machine needs.
# `make` alone lists the targets.

.DEFAULT_GOAL := help
SHELL := /bin/bash

# `make test` runs its own copy of the stack, under its own project name, with
# its own volumes and a random local port, so it never touches (or collides
# with) the stack `docker compose up` runs.
# The browser tests reach nginx by its service name, hence the extra host.
# SCRATCH_DIR is a folder the tests share with the Docker engine, at the same
# path, for the stacks they start themselves (`make dev`, HTTPS).
# tests/coverage/compose.yml measures the coverage of the code the stack runs.
# The test and dev stacks send mail to their mail catcher (the `mail`
# service of docker-compose.yml), which keeps and shows every message.
MAIL_CATCHER := EMAIL_URL=smtp://mail:1025 DEFAULT_FROM_EMAIL=noreply@localhost
TEST_PROJECT ?= $(notdir $(CURDIR))-test
BENCH_QUICK ?= 0
TEST_COMPOSE := $(MAIL_CATCHER) HTTP_PORT=127.0.0.1:0 DJANGO_ALLOWED_HOSTS=localhost,127.0.0.1,nginx \
	docker compose --project-name $(TEST_PROJECT) --profile test --profile mail-catcher \
	--file docker-compose.yml --file tests/coverage/compose.yml

# `make dev` runs the development stack (docker-compose.dev.yml) under a
# project of its own, as you, on http://localhost:8000 (this machine only).
DEV_USER ?= $(shell id -u):$(shell id -g)
DEV_COMPOSE := $(MAIL_CATCHER) DEV_USER=$(DEV_USER) HTTP_PORT=$${HTTP_PORT:-127.0.0.1:8000} \
	docker compose --project-name $(notdir $(CURDIR))-dev --profile mail-catcher \
	--file docker-compose.yml --file docker-compose.dev.yml
# One-off commands beside it: no dependencies started but the database's.
DEV_RUN := $(DEV_COMPOSE) run --rm --no-deps web

.PHONY: help
help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

# --- Running it ------------------------------------------------------------------

.PHONY: up
up: ## Build and run the stack on http://localhost:8000 (Ctrl-C stops it)
	docker compose up --build

.PHONY: down
down: ## Stop the stack; its data stays (docker compose down -v removes it too)
	docker compose down

.PHONY: backup
backup: ## Dump the stack's database to backups/app-<UTC time>.dump (while it runs)
	deploy/backup.sh backups

.PHONY: restore
restore: ## Put a dump back, in one transaction, on the running stack: make restore FILE=backups/...
	@[ -n "$(FILE)" ] || { echo "usage: make restore FILE=backups/app-<time>.dump"; exit 2; }
	deploy/restore.sh "$(FILE)"

# --- Working on it ---------------------------------------------------------------

.PHONY: dev
dev: ## Develop: your code mounted, DEBUG on, reloading on save, http://localhost:8000
	$(DEV_COMPOSE) up --build --remove-orphans

.PHONY: shell
shell: ## A Django shell beside `make dev`
	$(DEV_COMPOSE) up --detach --wait db redis
	$(DEV_RUN) python manage.py shell

.PHONY: manage
manage: ## Any manage.py command beside `make dev`: make manage ARGS="createsuperuser"
	$(DEV_COMPOSE) up --detach --wait db redis
	$(DEV_RUN) python manage.py $(ARGS)

.PHONY: migrations
migrations: ## Make migrations for your model changes, and apply them to the dev database
	$(DEV_COMPOSE) up --detach --wait db redis
	$(DEV_RUN) python manage.py makemigrations
	$(DEV_RUN) python manage.py migrate

.PHONY: psql
psql: ## A psql shell on the dev database
	$(DEV_COMPOSE) up --detach --wait db
	$(DEV_COMPOSE) exec db psql --username app app

.PHONY: app
app: ## A new app: make app NAME=orders makes apps/orders/ and installs it
	@[ -n "$(NAME)" ] || { echo "usage: make app NAME=<name>, a Python name such as orders"; exit 2; }
	$(DEV_RUN) python manage.py startapp $(NAME)

.PHONY: rename
rename: ## Give the project your fork's name (images, namespace, labels, titles): make rename NAME=shop
	docker run --rm --user "$(DEV_USER)" --volume "$(CURDIR):/src" --workdir /src \
	  python:3.13-slim python deploy/rename.py "$(NAME)"

# [demo:begin]
.PHONY: remove-demo
remove-demo: ## Take the demo out (apps/demo/ and every mention of it), leaving the platform
	docker run --rm --user "$(DEV_USER)" --volume "$(CURDIR):/src" --workdir /src \
	  python:3.13-slim python apps/demo/remove.py
# [demo:end]

.PHONY: lint
lint: ## Every linter (pre-commit: ruff, shellcheck, hadolint, actionlint...), fixing what they can
	docker compose --profile test build --quiet tests
	docker compose --profile test run --rm --no-deps --user "$(DEV_USER)" \
	  --volume "$(CURDIR):/app" tests pre-commit run --all-files

# --- Testing it ------------------------------------------------------------------

# PYTEST_ARGS: more of pytest's options for make test and make chaos, such as
# PYTEST_ARGS="-p randomly" to run the suite in a random order (docs/development.md).
PYTEST_ARGS ?=

# Build, lint, start a throwaway stack, run pytest with the given markers
# against it, report the coverage of apps/ and project/ (pytest's and the
# stack's; `coverage report` with the options given), and remove the stack,
# whatever happened. The stack's processes write their coverage data as they
# exit: `stop` first, each service with its own grace period.
define stack-tests
	@set -euo pipefail; \
	scratch=$$(mktemp -d); \
	trap 'status=$$?; if [ $$status -ne 0 ]; then echo "==> failed; state and recent logs of the stack:"; \
	  $(TEST_COMPOSE) ps --all; $(TEST_COMPOSE) logs --tail 30; fi; \
	  echo "==> removing the test stack"; $(TEST_COMPOSE) down --volumes --remove-orphans --timeout 5 >/dev/null 2>&1; \
	  rm -rf "$$scratch"; exit $$status' EXIT; \
	export SCRATCH_DIR=$$scratch; \
	echo "==> building images"; \
	$(TEST_COMPOSE) build --quiet; \
	echo "==> linters: pre-commit run --all-files, on the project as the image holds it"; \
	$(TEST_COMPOSE) run --rm --no-deps tests sh -c 'copy=$$(mktemp -d) && cp -a /app/. "$$copy" \
	  && cd "$$copy" && git init --quiet && git add --all \
	  && pre-commit run --all-files --show-diff-on-failure'; \
	echo "==> coverage: its package where the stack's services import it (tests/coverage/)"; \
	$(TEST_COMPOSE) run --rm --no-deps tests tests/coverage/setup.sh; \
	echo "==> starting the stack (asgi with two replicas)"; \
	$(TEST_COMPOSE) up --detach --wait --quiet-pull --scale asgi=2 nginx worker mail; \
	echo "==> pytest -m '$(1)'"; \
	$(TEST_COMPOSE) run --rm --no-deps tests coverage run -m pytest --no-skips -m '$(1)' $(PYTEST_ARGS); \
	echo "==> coverage of apps/ and project/: pytest's, Gunicorn's, Daphne's, the worker's"; \
	$(TEST_COMPOSE) stop web asgi worker >/dev/null 2>&1; \
	$(TEST_COMPOSE) run --rm --no-deps tests sh -c 'coverage combine --quiet && coverage report $(2)'
endef

# BENCH_SMOKE=0 leaves the benchmark's smoke test out of `make test`: for a
# second `make test` on the same machine (CI's, .ci/run), where it would
# prove nothing the first did not (bench/ has an app of its own).
BENCH_SMOKE ?= 1

.PHONY: test
test: ## Lint, build, start a throwaway stack, run the tests through it, remove it; bench smoke test
	$(call stack-tests,not chaos,)
ifneq ($(BENCH_SMOKE),0)
	@echo "==> benchmark smoke test: every scenario briefly; every figure there, no errors, no ratio far off"
	BENCH_QUICK=1 BENCH_PROJECT=$(TEST_PROJECT)-bench BENCH_RESULTS=bench-results/quick bench/run.sh
	docker run --rm --volume "$(CURDIR)/bench-results/quick:/results:ro" \
	  django-reference/bench:$(TEST_PROJECT)-bench python check_report.py /results
endif

.PHONY: chaos
chaos: ## The slow tests: faults (restarts, outages, kills) and slow clients, on a throwaway stack
	$(call stack-tests,chaos,--fail-under=0)

# The manifests are rendered, validated, policy-checked and held to their
# invariants by `make test` (tests/kubernetes/, in the tests image). This runs
# them: it needs podman, catatonit and PyYAML on the host, which `make test`
# does not, so it is a target of its own that CI runs after `make test`.
.PHONY: test-kubernetes
test-kubernetes: ## Run the Kubernetes manifests on podman (needs podman, catatonit, python3-yaml): probes, a page, a POST, a WebSocket and tasks through nginx; a web pod drained under POSTs
	@echo "==> building images"
	$(TEST_COMPOSE) build --quiet web nginx tests
	@echo "==> Kubernetes: the local overlay on podman kube play, checked through its nginx pod, and a web pod stopped as the kubelet stops it, under POSTs"
	tests/kubernetes/podman/run.sh $(TEST_PROJECT) --drain

.PHONY: bench
bench: ## Benchmark every scenario side by side; report in bench-results/ (BENCH_QUICK=1: briefly)
	BENCH_QUICK=$(BENCH_QUICK) bench/run.sh

# --- Dependencies ----------------------------------------------------------------

# Every pin with the hashes of its files, which the images install with
# --require-hashes. Each .txt file's header names these options: Dependabot,
# which regenerates the .txt files itself, takes its options from the file's
# text, --generate-hashes from the hashes and --allow-unsafe from a pinned pip,
# but --strip-extras only from its name (a file named by -c may hold no extras).
PIP_COMPILE_OPTIONS := --generate-hashes --strip-extras --allow-unsafe --no-emit-index-url --no-emit-find-links

.PHONY: requirements
requirements: ## Regenerate the pinned requirements/*.txt from *.in (ARGS=--upgrade for newer pins)
	docker run --rm --volume "$(CURDIR)/requirements:/requirements" --workdir /requirements \
	  --env CUSTOM_COMPILE_COMMAND="make requirements (pip-compile $(PIP_COMPILE_OPTIONS))" \
	  python:3.13-slim sh -c 'python -m venv /tmp/pip-tools && /tmp/pip-tools/bin/pip install --quiet pip-tools && \
	  for name in base production dev bench checkov; do \
	    echo "==> $$name.txt"; \
	    /tmp/pip-tools/bin/pip-compile --quiet $(PIP_COMPILE_OPTIONS) \
	      $(ARGS) --output-file "$$name.txt" "$$name.in"; \
	  done'
