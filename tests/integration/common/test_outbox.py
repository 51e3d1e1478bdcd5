"""The outbox keeps events through a broker outage and never half-commits."""
import time
from urllib.parse import urlparse

import pytest
from kombu import Connection, Queue
from marshmallow import Schema, fields
from nameko.testing.services import dummy, entrypoint_hook
from sqlalchemy import Column, Integer, MetaData, String, Table, func, select

from services.common.db import Database, make_engine
from services.common.envelope import EventType, event_catalog
from services.common.outbox import UNROUTED_QUEUE, Outbox, event_exchange, outbox_table
from support.tcp_proxy import TcpProxy

metadata = MetaData()
notes = Table("notes", metadata, Column("id", Integer, primary_key=True), Column("text", String(50)))
outbox = outbox_table(metadata)


class NoteAddedSchema(Schema):
    text = fields.String(required=True)


EVENTS = event_catalog(EventType("note_added", NoteAddedSchema()))


class NotesService:
    name = "notes"
    db = Database("NOTES_DB_URL")
    events = Outbox("NOTES_DB_URL", outbox, EVENTS)

    @dummy
    def add(self, text, fail=False):
        with self.db.transaction() as session:
            session.execute(notes.insert().values(text=text))
            self.events.record(session, "note_added", "acme", {"text": text})
            if fail:
                raise RuntimeError("something went wrong after the writes")


@pytest.fixture
def notes_db(make_db_url):
    url = make_db_url("notes")
    engine = make_engine(url)
    metadata.create_all(engine)
    yield url, engine
    engine.dispose()


@pytest.fixture
def broker_proxy(rabbit_config):
    uri = urlparse(rabbit_config["AMQP_URI"])
    proxy = TcpProxy(uri.hostname, uri.port or 5672)
    yield proxy, f"amqp://{uri.username}:{uri.password}@127.0.0.1:{proxy.port}/{rabbit_config['vhost']}"
    proxy.close()


def count(engine, query):
    with engine.connect() as connection:
        return connection.execute(query).scalar_one()


def drain(channel_queue, expected, timeout):
    received = []
    deadline = time.monotonic() + timeout
    while len(received) < expected and time.monotonic() < deadline:
        message = channel_queue.get(no_ack=True)
        if message is None:
            time.sleep(0.05)
            continue
        received.append(message)
    return received


def test_events_committed_while_the_broker_is_away_arrive_after_it_returns(
    container_factory, rabbit_config, notes_db, broker_proxy,
):
    url, engine = notes_db
    proxy, proxied_uri = broker_proxy
    container = container_factory(NotesService, {
        "AMQP_URI": proxied_uri, "NOTES_DB_URL": url, "OUTBOX_POLL_INTERVAL": 0.1,
    })
    container.start()

    with Connection(rabbit_config["AMQP_URI"]) as connection:
        queue = Queue("test-notes-events", exchange=event_exchange("notes"), routing_key="note_added")
        bound = queue(connection.channel())
        bound.declare()

        proxy.cut()
        with entrypoint_hook(container, "add") as add:
            for number in range(10):
                add(f"note {number}")

        assert count(engine, select(func.count()).select_from(notes)) == 10
        unpublished = select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
        assert count(engine, unpublished) == 10
        assert drain(bound, 1, timeout=1.0) == []

        proxy.restore()
        received = drain(bound, 10, timeout=30)

    assert sorted(message.payload["data"]["text"] for message in received) == [f"note {n}" for n in range(10)]
    assert len({message.payload["event_id"] for message in received}) == 10
    assert all(message.payload["merchant_id"] == "acme" for message in received)
    assert all(message.properties["delivery_mode"] == 2 for message in received)
    assert count(engine, unpublished) == 0


def test_an_error_leaves_neither_the_change_nor_its_event(container_factory, rabbit_config, notes_db):
    url, engine = notes_db
    container = container_factory(NotesService, {"AMQP_URI": rabbit_config["AMQP_URI"], "NOTES_DB_URL": url})
    container.start()

    with entrypoint_hook(container, "add") as add:
        with pytest.raises(RuntimeError):
            add("half done", fail=True)

    assert count(engine, select(func.count()).select_from(notes)) == 0
    assert count(engine, select(func.count()).select_from(outbox)) == 0


def test_an_event_no_queue_is_bound_for_is_kept_with_its_routing(container_factory, rabbit_config, notes_db):
    url, engine = notes_db
    container = container_factory(NotesService, {
        "AMQP_URI": rabbit_config["AMQP_URI"], "NOTES_DB_URL": url, "OUTBOX_POLL_INTERVAL": 0.1,
    })
    container.start()
    with entrypoint_hook(container, "add") as add:
        add("nobody listens")

    with Connection(rabbit_config["AMQP_URI"]) as connection:
        unrouted = UNROUTED_QUEUE(connection.channel())
        unrouted.declare()
        kept = drain(unrouted, 1, timeout=20)
    assert [message.payload["data"]["text"] for message in kept] == ["nobody listens"]
    assert kept[0].delivery_info["routing_key"] == "note_added"
    assert kept[0].headers["x-portal-exchange"] == "notes.events"
