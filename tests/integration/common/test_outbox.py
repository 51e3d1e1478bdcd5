"""The outbox keeps events through a broker outage and never half-commits."""
import time

import eventlet
import eventlet.event
import pytest
from kombu import Connection, Queue
from marshmallow import Schema, fields
from nameko.testing.services import dummy, entrypoint_hook
from sqlalchemy import Column, Integer, MetaData, String, Table, func, select

from services.common.db import Database, make_engine
from services.common.envelope import EventType, event_catalog
from services.common.events import first_delivery, inbox_table
from services.common.outbox import UNROUTED_QUEUE, Outbox, event_exchange, outbox_table

metadata = MetaData()
notes = Table("notes", metadata, Column("id", Integer, primary_key=True), Column("text", String(50)))
outbox = outbox_table(metadata)
# A consumer downstream: what it did for each note, deduplicated by event id.
downstream = MetaData()
noted = Table("noted", downstream, Column("id", Integer, primary_key=True), Column("text", String(50)))
downstream_inbox = inbox_table(downstream)


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


def drain_distinct(channel_queue, expected, timeout, seen=()):
    """Messages until `expected` distinct event ids (counting `seen`) have arrived."""
    received = []
    ids = {message.payload["event_id"] for message in seen}
    deadline = time.monotonic() + timeout
    while len(ids) < expected and time.monotonic() < deadline:
        for message in drain(channel_queue, 1, timeout=0.5):
            received.append(message)
            ids.add(message.payload["event_id"])
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
    unpublished = select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))

    with Connection(rabbit_config["AMQP_URI"]) as connection:
        queue = Queue("test-notes-events", exchange=event_exchange("notes"), routing_key="note_added")
        bound = queue(connection.channel())
        bound.declare()

        # The relay's connection is cut while the 100 changes commit (the first 20
        # before the cut), and stays away until every one is committed.
        with entrypoint_hook(container, "add") as add:
            for number in range(100):
                if number == 20:
                    proxy.cut()
                add(f"note {number}")
        committed = count(engine, select(func.count()).select_from(notes))
        waiting = count(engine, unpublished)
        assert committed == 100 and waiting > 0
        early = drain(bound, 100, timeout=1.0)

        proxy.restore()
        # At least once: a batch the broker confirmed just before the cut is published
        # again, so read until every event arrived (or the time is up), copies included.
        received = early + drain_distinct(bound, 100, timeout=60, seen=early)
        received += drain(bound, 1000, timeout=1.0)

    event_ids = [message.payload["event_id"] for message in received]
    texts = {message.payload["data"]["text"] for message in received}
    print(f"\noutbox under a cut connection: {committed} committed, {waiting} waiting when the broker was away, "
          f"{len(received)} received, {len(set(event_ids))} distinct, {100 - len(texts)} lost, "
          f"{len(event_ids) - len(set(event_ids))} duplicated")
    assert texts == {f"note {n}" for n in range(100)}
    assert len(set(event_ids)) == 100
    assert all(message.payload["merchant_id"] == "acme" for message in received)
    assert all(message.properties["delivery_mode"] == 2 for message in received)
    assert count(engine, unpublished) == 0

    # Every copy handled, duplicates included: one effect per event.
    downstream.create_all(engine)
    with engine.begin() as connection:
        for message in received:
            if first_delivery(connection, downstream_inbox, message.payload["event_id"], "noted"):
                connection.execute(noted.insert().values(text=message.payload["data"]["text"]))
    assert count(engine, select(func.count()).select_from(noted)) == 100


def test_a_stop_lets_the_relay_finish_the_batch_it_is_publishing(container_factory, rabbit_config, notes_db, caplog):
    url, engine = notes_db
    container = container_factory(NotesService, {"AMQP_URI": rabbit_config["AMQP_URI"], "NOTES_DB_URL": url})
    container.start()
    [dependency] = [extension for extension in container.dependencies if isinstance(extension, Outbox)]
    publish_batch, publishing = dependency.relay._publish_batch, eventlet.event.Event()

    def slow_publish_batch(producer, events):
        if not publishing.ready():
            publishing.send()
        eventlet.sleep(0.5)  # still publishing when the stop begins
        publish_batch(producer, events)

    dependency.relay._publish_batch = slow_publish_batch
    with entrypoint_hook(container, "add") as add:
        add("published while stopping")
    publishing.wait()
    container.stop()

    unpublished = select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
    assert count(engine, select(func.count()).select_from(outbox)) == 1
    assert count(engine, unpublished) == 0
    assert "killing" not in caplog.text


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
