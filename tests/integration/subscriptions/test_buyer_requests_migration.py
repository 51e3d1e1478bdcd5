"""Migration 0003 on a database with buyer requests stored before it: each stays its
e-mail's unscoped request, a card-entry link stored in clear is dropped, and the same
key can then be used from a merchant's scope."""
import secrets
from datetime import datetime, timezone

import pytest
from alembic import command
from sqlalchemy import MetaData, Table, insert, select
from sqlalchemy.exc import IntegrityError

from services.billing.card_entry import TICKET_BYTES
from services.common import migrations
from services.common.db import make_engine
from support import secret_scan

BEFORE = "dabc257ed5a1"  # 0002
STARTED = datetime(2026, 3, 15, 12, 0, tzinfo=timezone.utc)


def request(key, operation, response):
    return {"email": "ana@example.com", "idempotency_key": key, "operation": operation, "fingerprint": "f" * 64,
            "status": "done", "response": response, "refusal": None, "started_at": STARTED,
            "completed_at": STARTED}


@pytest.fixture
def database(make_db_url):
    """A subscriptions database at 0002 and its engine."""
    url = make_db_url("subscriptions")
    command.upgrade(migrations.alembic_config("subscriptions", url), BEFORE)
    engine = make_engine(url)
    yield url, engine
    engine.dispose()


def buyer_requests(engine):
    return Table("buyer_requests", MetaData(), autoload_with=engine)


def test_stored_requests_become_the_unscoped_logins_and_lose_their_card_entry_links(database):
    url, engine = database
    ticket = secrets.token_urlsafe(TICKET_BYTES)
    with engine.begin() as connection:
        connection.execute(insert(buyer_requests(engine)), [
            request("k-cancel", "cancel", {"subscription": {"id": "s-1"}, "order": None}),
            request("k-card", "begin_card_update", {
                "ticket": ticket, "form_url": f"http://billing.test/card?ticket={ticket}",
                "expires_at": "2026-03-15T12:15:00+00:00"}),
        ])

    migrations.upgrade("subscriptions", url)

    table = buyer_requests(engine)
    with engine.connect() as connection:
        rows = connection.execute(select(table).order_by(table.c.id)).mappings().all()
    assert [(row["idempotency_key"], row["merchant_scope"], row["response"]) for row in rows] == [
        ("k-cancel", "", {"subscription": {"id": "s-1"}, "order": None}), ("k-card", "", None)]
    assert secret_scan.scan_database(url) == []

    with engine.begin() as connection:
        connection.execute(insert(table), [{**request("k-cancel", "cancel", None), "merchant_scope": "acme-cursos"}])
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(insert(table), [{**request("k-cancel", "cancel", None), "merchant_scope": ""}])


def test_a_downgrade_forgets_what_the_old_schema_cannot_hold(database):
    url, engine = database
    migrations.upgrade("subscriptions", url)
    with engine.begin() as connection:
        connection.execute(insert(buyer_requests(engine)), [
            {**request("k-1", "cancel", {"subscription": {"id": "s-1"}}), "merchant_scope": ""},
            {**request("k-1", "cancel", {"subscription": {"id": "s-1"}}), "merchant_scope": "acme-cursos"},
            {**request("k-2", "begin_card_update", None), "merchant_scope": ""},
        ])

    command.downgrade(migrations.alembic_config("subscriptions", url), BEFORE)

    table = buyer_requests(engine)
    with engine.connect() as connection:
        rows = connection.execute(select(table.c.idempotency_key, table.c.response)).all()
    assert rows == [("k-1", {"subscription": {"id": "s-1"}})]
    assert "merchant_scope" not in table.c
