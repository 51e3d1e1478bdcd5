"""Fixtures every layer shares. nameko since 2.14 needs eventlet's monkey patching
before anything else is imported, so it comes first."""
import eventlet

eventlet.monkey_patch()

import os  # noqa: E402
import uuid  # noqa: E402

import pytest  # noqa: E402

from services.billing.credentials import new_key  # noqa: E402
from services.common import migrations  # noqa: E402
from services.common.config import load_config  # noqa: E402
from support.databases import create_postgres_database, drop_postgres_databases  # noqa: E402
from support.ports import free_port  # noqa: E402

# At the session's end, every database and log the tests wrote is scanned for card data.
pytest_plugins = ["support.secret_scan"]

# The browser tests run in a pytest process of their own, without eventlet's monkey
# patching, which Playwright's sync API cannot run under: `make test-browser`.
collect_ignore = ["browser"]

# PORTAL_TEST_DATABASE=postgresql runs the database-backed tests on PostgreSQL.
DATABASE_BACKEND = os.environ.get("PORTAL_TEST_DATABASE", "sqlite")
# What gives a test a database on the chosen backend: the fixture behind every service's
# database, and the fixtures that start a whole portal on it (the end-to-end suite's, the
# login limits' behind a proxy). A new fixture of that kind belongs here.
DATABASE_FIXTURES = {"make_db_url", "system", "proxied"}


def pytest_collection_modifyitems(config, items):
    """On PostgreSQL, only the tests that have a database run: the others (processor
    adapters against their fakes, HTTP limits, RPC plumbing, devtools) would repeat
    exactly what `make test` ran."""
    if DATABASE_BACKEND == "sqlite":
        return
    without_database = [item for item in items if not DATABASE_FIXTURES & set(item.fixturenames)]
    if without_database:
        config.hook.pytest_deselected(items=without_database)
        items[:] = [item for item in items if DATABASE_FIXTURES & set(item.fixturenames)]


@pytest.fixture
def make_db_url(tmp_path):
    """Factory of empty databases, one per call: SQLite files or PostgreSQL databases."""
    created = []

    def make(service):
        if DATABASE_BACKEND == "sqlite":
            return f"sqlite:///{tmp_path}/{service}-{uuid.uuid4().hex[:6]}.db"
        name, url = create_postgres_database(f"portal_test_{service}")
        created.append(name)
        return url

    yield make
    drop_postgres_databases(created)


@pytest.fixture
def migrated_db_url(make_db_url):
    """Factory: a fresh database for `service`, migrated to the newest revision."""

    def make(service):
        url = make_db_url(service)
        migrations.upgrade(service, url)
        return url

    return make


# Where nothing listens (the discard port): connections are refused at once.
NO_ASAAS = "http://127.0.0.1:9/v3"
NO_MERCADOPAGO = "http://127.0.0.1:9"


@pytest.fixture
def web_config():
    """nameko's fixture of the same name, on a port outside the ephemeral range
    (support.ports says why: its own took one an AMQP client could take first)."""
    return {"WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}"}


@pytest.fixture
def service_config(rabbit_config, migrated_db_url):
    """Config for services under test: this test's own vhost and migrated databases.

    `service_config("auth", "billing", RPC_TIMEOUT=1)` migrates a database for each
    named service; other keys keep config.yaml's values unless overridden.
    """

    def make(*services, **overrides):
        config = load_config()
        config["AMQP_URI"] = rabbit_config["AMQP_URI"]
        config["RPC_TIMEOUT"] = 2
        config["OUTBOX_POLL_INTERVAL"] = 0.1
        # As `make run` has one: processor accounts (the demo's too) are sealed with it.
        config["BILLING_CREDENTIAL_KEYS"] = new_key()
        # No test reaches the real Asaas: a test that needs one starts the fake (fake_asaas).
        config["ASAAS_SANDBOX_URL"] = config["ASAAS_PRODUCTION_URL"] = NO_ASAAS
        # Nor the real Mercado Pago (fake_mercadopago where a test needs one).
        config["MERCADOPAGO_API_URL"] = NO_MERCADOPAGO
        for service in services:
            config[migrations.db_url_key(service)] = migrated_db_url(service)
        config.update(overrides)
        return config

    return make
