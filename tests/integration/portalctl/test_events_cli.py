"""`portalctl events`: what ops use to watch the bus and deliver again what got stuck."""
import json
import os
import subprocess
import sys
import uuid

import pytest
from kombu import Connection, Exchange, Queue

from services.common.config import REPO_ROOT
from services.common.events import DEAD_LETTER_QUEUE
from services.common.outbox import ORIGIN_HEADER, UNROUTED_QUEUE, event_exchange
from support.event_consumer import wait_for_consumer
from support.publishing import publish_confirmed


def portalctl(rabbit_config, *args, **popen):
    env = {**os.environ, "AMQP_URI": rabbit_config["AMQP_URI"]}
    return subprocess.Popen(
        [sys.executable, "-m", "portalctl.cli", "events", *args], cwd=REPO_ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen,
    )


def run_portalctl(rabbit_config, *args):
    process = portalctl(rabbit_config, *args)
    output, errors = process.communicate(timeout=30)
    assert process.returncode == 0, errors
    return output


def envelope(event_type, **data):
    return {"event_id": str(uuid.uuid4()), "type": event_type, "version": 1,
            "occurred_at": "2026-11-26T12:00:00+00:00", "merchant_id": "acme-cursos", "data": data}


def test_tail_prints_matching_events_as_they_happen(rabbit_config):
    tail = portalctl(rabbit_config, "tail", "--type", "subscription_*", "--count", "2", "--idle-seconds", "20")
    try:
        wait_for_consumer(rabbit_config["vhost"])
        first, other, second = envelope("subscription_canceled", n=1), envelope("order_paid"), envelope("subscription_renewed", n=2)
        publish_confirmed(rabbit_config["AMQP_URI"], event_exchange("subscriptions"), first)
        publish_confirmed(rabbit_config["AMQP_URI"], event_exchange("billing"), other)
        publish_confirmed(rabbit_config["AMQP_URI"], event_exchange("subscriptions"), second)
        output, errors = tail.communicate(timeout=30)
    finally:
        tail.kill()
    assert tail.returncode == 0, errors
    lines = output.strip().splitlines()
    assert len(lines) == 2
    assert first["event_id"] in lines[0] and "subscription_canceled" in lines[0]
    assert second["event_id"] in lines[1] and other["event_id"] not in output


@pytest.fixture
def failing_queue(rabbit_config):
    """A consumer's queue, and one event that died there and one that died elsewhere."""
    with Connection(rabbit_config["AMQP_URI"]) as connection:
        queue = Queue("evt-billing-order_paid--notifications.on_order_paid", durable=True)
        queue(connection.channel()).declare()
        DEAD_LETTER_QUEUE(connection.channel()).declare()
    dead = [envelope("order_paid", n=1), envelope("order_paid", n=2)]
    for body, queue_name in zip(dead, [queue.name, "evt-elsewhere"]):
        publish_confirmed(rabbit_config["AMQP_URI"], DEAD_LETTER_QUEUE.exchange, body, headers={
            "x-first-death-queue": queue_name, ORIGIN_HEADER: "billing.events",
        })
    return queue, dead


def test_dead_letters_are_listed_and_one_is_sent_back_to_its_own_queue(rabbit_config, failing_queue):
    queue, dead = failing_queue
    listing = run_portalctl(rabbit_config, "dead-letters")
    assert all(body["event_id"] in listing for body in dead)

    moved = run_portalctl(rabbit_config, "dead-letters", "--send-back", dead[0]["event_id"])
    assert "1 message(s) sent back" in moved

    with Connection(rabbit_config["AMQP_URI"]) as connection:
        redelivered = queue(connection.channel()).get(no_ack=True)
        remaining = DEAD_LETTER_QUEUE(connection.channel())
        still_dead = [remaining.get(no_ack=True) for _ in range(2)]
    assert json.loads(redelivered.body)["event_id"] == dead[0]["event_id"]
    assert [json.loads(m.body)["event_id"] for m in still_dead if m] == [dead[1]["event_id"]]


def test_unrouted_events_reach_a_consumer_that_binds_later(rabbit_config):
    kept = [envelope("subscription_canceled", n=1), envelope("order_paid", n=2), envelope("subscription_renewed", n=3)]
    with Connection(rabbit_config["AMQP_URI"]) as connection:
        UNROUTED_QUEUE(connection.channel()).declare()
        # As the outbox publishes: stamped with its broker user, which the broker checks.
        publisher = connection.userid
    publish_confirmed(rabbit_config["AMQP_URI"], UNROUTED_QUEUE.exchange, kept[0],
                      headers={ORIGIN_HEADER: "subscriptions.events"}, user_id=publisher)
    publish_confirmed(rabbit_config["AMQP_URI"], UNROUTED_QUEUE.exchange, kept[1],
                      headers={ORIGIN_HEADER: "billing.events"}, user_id=publisher)
    # Naming no publisher: anyone who may publish to the unrouted exchange could have.
    publish_confirmed(rabbit_config["AMQP_URI"], UNROUTED_QUEUE.exchange, kept[2],
                      headers={ORIGIN_HEADER: "subscriptions.events"})

    late = Queue("late-consumer", exchange=Exchange("subscriptions.events", type="topic", durable=True),
                 routing_key="#", durable=True)
    with Connection(rabbit_config["AMQP_URI"]) as connection:
        late(connection.channel()).declare()
    replayed = run_portalctl(rabbit_config, "unrouted", "--type", "subscription_*", "--send-back", "all")
    assert "1 message(s) sent back" in replayed

    with Connection(rabbit_config["AMQP_URI"]) as connection:
        got = late(connection.channel()).get(no_ack=True)
        left = [UNROUTED_QUEUE(connection.channel()).get(no_ack=True) for _ in range(2)]
    assert json.loads(got.body)["event_id"] == kept[0]["event_id"]
    assert [json.loads(message.body)["event_id"] for message in left] == [kept[1]["event_id"], kept[2]["event_id"]]
