"""Poison messages end in the dead-letter queue; good ones keep flowing; a redelivered
event is acted on once."""
import time
import uuid

import pytest
from kombu import Connection
from nameko.testing.services import entrypoint_waiter
from sqlalchemy import Column, Integer, MetaData, String, Table, func, select

from services.common.db import Database, make_engine
from services.common.errors import ServiceUnavailable
from services.common.events import DEAD_LETTER_QUEUE, event_handler, first_delivery, inbox_table
from services.common.outbox import event_exchange
from support.publishing import publish_confirmed

metadata = MetaData()
effects = Table("effects", metadata, Column("id", Integer, primary_key=True), Column("event_id", String(36)))
inbox = inbox_table(metadata)
attempts = []
SHOP_EVENTS = event_exchange("shop")


# Until when (monotonic) the dependency of `on_thing` does not answer.
dependency_down_until = [0.0]


class ListenerService:
    name = "listener"
    db = Database("LISTENER_DB_URL")

    @event_handler("shop", "thing_happened")
    def on_thing(self, envelope):
        attempts.append(envelope["event_id"])
        if envelope["data"].get("poison"):
            raise ValueError("cannot process this one")
        if time.monotonic() < dependency_down_until[0]:
            raise ServiceUnavailable("subscriptions did not answer in time.")
        with self.db.transaction() as session:
            if first_delivery(session, inbox, envelope["event_id"], "on_thing"):
                session.execute(effects.insert().values(event_id=envelope["event_id"]))


def envelope(**data):
    return {"event_id": str(uuid.uuid4()), "type": "thing_happened", "version": 1,
            "occurred_at": "2026-11-26T12:00:00+00:00", "merchant_id": None, "data": data}


@pytest.fixture
def listener(container_factory, rabbit_config, make_db_url):
    attempts.clear()
    dependency_down_until[0] = 0.0
    url = make_db_url("listener")
    engine = make_engine(url)
    metadata.create_all(engine)
    container = container_factory(ListenerService, {
        "AMQP_URI": rabbit_config["AMQP_URI"], "LISTENER_DB_URL": url, "EVENT_DELIVERY_LIMIT": 2,
    })
    container.start()
    yield container, engine
    engine.dispose()


def test_a_poison_message_is_dead_lettered_and_the_next_one_is_processed(listener, rabbit_config):
    container, engine = listener
    poison, good = envelope(poison=True), envelope(n=1)
    with entrypoint_waiter(container, "on_thing", callback=lambda worker_ctx, result, exc_info: (
            worker_ctx.args[0]["event_id"] == good["event_id"]), timeout=30):
        publish_confirmed(rabbit_config["AMQP_URI"], SHOP_EVENTS, poison, good)

    with Connection(rabbit_config["AMQP_URI"]) as connection:
        dead = DEAD_LETTER_QUEUE(connection.channel())
        message = None
        deadline = time.monotonic() + 20
        while message is None and time.monotonic() < deadline:
            message = dead.get(no_ack=True)
            time.sleep(0.1)
    assert message is not None and message.payload["event_id"] == poison["event_id"]
    # Tried within the delivery limit, not forever.
    assert 2 <= attempts.count(poison["event_id"]) <= 3
    with engine.connect() as connection:
        assert connection.execute(select(effects.c.event_id)).scalars().all() == [good["event_id"]]


def test_a_redelivered_event_is_acted_on_once(listener, rabbit_config):
    container, engine = listener
    once = envelope(n=2)
    for _ in range(2):
        with entrypoint_waiter(container, "on_thing", timeout=30):
            publish_confirmed(rabbit_config["AMQP_URI"], SHOP_EVENTS, once)
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(effects)).scalar_one() == 1


def test_a_dependency_down_for_a_few_seconds_delays_the_event_instead_of_dead_lettering_it(listener, rabbit_config):
    container, engine = listener  # a delivery limit of 2: three deliveries
    event = envelope(n=2)
    # Down for 2 s: three deliveries back to back would all fail; waiting 1 s, then
    # 2 s, before giving the message back reaches the dependency on the third.
    dependency_down_until[0] = time.monotonic() + 2
    with entrypoint_waiter(container, "on_thing", callback=lambda worker_ctx, result, exc_info: (
            exc_info is None), timeout=30):
        publish_confirmed(rabbit_config["AMQP_URI"], SHOP_EVENTS, event)

    assert 2 <= attempts.count(event["event_id"]) <= 3
    with engine.connect() as connection:
        assert connection.execute(select(effects.c.event_id)).scalars().all() == [event["event_id"]]
    with Connection(rabbit_config["AMQP_URI"]) as connection:
        assert DEAD_LETTER_QUEUE(connection.channel()).get(no_ack=True) is None
