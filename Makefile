# The two commands: `make run` brings the whole portal up, `make test` proves it.
PY := .venv/bin/python
PYTEST := $(PY) -m pytest

.PHONY: run test test-unit test-integration test-e2e test-postgres test-deploy lock bootstrap bench

bootstrap:
	@devtools/bootstrap.sh

run: bootstrap
	@$(PY) -m devtools.run

test: bootstrap
	@devtools/bootstrap.sh --for-tests
	$(PYTEST) tests/unit tests/integration tests/e2e tests/deploy

test-unit: bootstrap
	$(PYTEST) tests/unit

test-integration: bootstrap
	@devtools/bootstrap.sh --for-tests
	$(PYTEST) tests/integration

test-e2e: bootstrap
	@devtools/bootstrap.sh --for-tests
	$(PYTEST) tests/e2e

# Integration and end-to-end suites again, each service on its own PostgreSQL database.
test-postgres: bootstrap
	@devtools/bootstrap.sh --for-tests
	PORTAL_TEST_DATABASE=postgresql $(PYTEST) tests/integration tests/e2e

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
