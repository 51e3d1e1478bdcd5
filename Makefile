# The two commands: `make run` brings the whole portal up, `make test` proves it.
PY := .venv/bin/python
PYTEST := $(PY) -m pytest

.PHONY: run test test-unit test-integration test-e2e test-browser test-postgres test-deploy test-fuzz test-faults bench lock bootstrap messages

bootstrap:
	@devtools/bootstrap.sh

run: bootstrap
	@$(PY) -m devtools.run

test: bootstrap
	@devtools/bootstrap.sh --for-tests
	.venv/bin/lint-imports
	$(PYTEST) tests/unit tests/integration tests/e2e tests/contract tests/deploy tests/fuzz
	$(BROWSER_PYTEST) tests/browser

test-unit: bootstrap
	$(PYTEST) tests/unit

test-integration: bootstrap
	@devtools/bootstrap.sh --for-tests
	$(PYTEST) tests/integration

test-e2e: bootstrap
	@devtools/bootstrap.sh --for-tests
	$(PYTEST) tests/e2e

# schemathesis against the OpenAPI document of a portal running on PostgreSQL
# (bounded examples, fixed seed); `make test` runs it too.
test-fuzz: bootstrap
	@devtools/bootstrap.sh --for-tests
	$(PYTEST) tests/fuzz

# The pages in Debian's chromium (Playwright), in a pytest process of their own: Playwright's
# sync API cannot run under the eventlet monkey patching of tests/conftest.py, which
# --confcutdir leaves out. Screenshots land in var/artifacts/browser/.
BROWSER_PYTEST := $(PYTEST) --confcutdir=tests/browser
test-browser: bootstrap
	@devtools/bootstrap.sh --for-tests
	$(BROWSER_PYTEST) tests/browser

# Integration and end-to-end suites again, each service on its own PostgreSQL database:
# the tests that have a database (tests/conftest.py leaves out the others) less those
# that choose their own backend (marked fixed_database).
test-postgres: bootstrap
	@devtools/bootstrap.sh --for-tests
	PORTAL_TEST_DATABASE=postgresql $(PYTEST) -m "not fixed_database" tests/integration tests/e2e

# Faults on real processes on PostgreSQL and a private RabbitMQ node the suite starts
# and stops (never the shared broker): a killed billing, a broker restart, a stopped
# service, SIGTERM under load, a gateway cut off from the broker. (The deploy checks run
# in `make test`.)
test-faults: bootstrap
	@devtools/bootstrap.sh --for-tests
	$(PYTEST) --durations=8 tests/faults

# deploy/ without a Docker engine, a cluster or the network: manifests against the
# Kubernetes schemas, the Dockerfile through hadolint, the entrypoint, compose, inventory.
test-deploy: bootstrap
	$(PYTEST) tests/deploy

# Recompile requirements.lock after editing requirements.in.
lock: bootstrap
	$(PY) -m pip install --quiet pip-tools
	$(PY) -m piptools compile --quiet --no-header --strip-extras --allow-unsafe \
		--no-emit-index-url --no-emit-find-links -o requirements.lock requirements.in

# Benchmarks (bench/): the system on PostgreSQL, measured against its targets; writes
# docs/performance.md and docs/performance.json. BENCH_QUICK=1: a short run into var/bench/.
bench: bootstrap
	@devtools/bootstrap.sh --for-tests
	$(PY) -m bench

# Re-extract the pages' texts (the gateway's, and billing's card pages) into each one's
# locale/messages.pot and merge them into each language's catalog
# (<locale>/<lang>/LC_MESSAGES/messages.po); translate the new ones.
CATALOGS := gateway services/billing
messages: bootstrap
	for home in $(CATALOGS); do \
		.venv/bin/pybabel extract -F $$home/babel.cfg -k N_ --no-location --sort-output \
			--project "Portal do Cliente" -o $$home/locale/messages.pot . && \
		.venv/bin/pybabel update -i $$home/locale/messages.pot -d $$home/locale --no-fuzzy-matching || exit 1; \
	done
