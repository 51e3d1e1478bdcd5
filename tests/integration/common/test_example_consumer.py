"""examples/consume_events.py, run as a system outside the project runs it: a process
of its own, plain pika, a durable queue of its own; it prints the event the outbox
relay publishes, acknowledges it, and its queue stays for the next run."""
import json
import subprocess
import sys
import threading
from datetime import datetime, timezone

import pika
from sqlalchemy import MetaData
from sqlalchemy.orm import Session

from services.common.config import REPO_ROOT
from services.common.db import make_engine
from services.common.outbox import OutboxRelay, Recorder, outbox_table
from services.subscriptions.service import EVENTS
from support.event_consumer import wait_for_consumer

EXAMPLE = REPO_ROOT / "examples" / "consume_events.py"


def test_the_example_consumer_receives_a_published_event(rabbit_config, make_db_url):
    queue = "crm.subscriptions"
    # The URL as pika spells it (kombu's test fixture says "pyamqp://").
    amqp_uri = "amqp://" + rabbit_config["AMQP_URI"].split("://", 1)[1]
    metadata = MetaData()
    table = outbox_table(metadata)
    engine = make_engine(make_db_url("example"))
    metadata.create_all(engine)
    consumer = subprocess.Popen(
        [sys.executable, str(EXAMPLE), "--amqp-uri", amqp_uri, "--queue", queue,
         "--bind", "subscriptions:subscription_*", "--count", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_for_consumer(rabbit_config["vhost"], queue)
        # What the subscriptions service does: record the event with its change, then relay it.
        with Session(engine) as session, session.begin():
            recorded = Recorder(table, EVENTS, threading.Event()).record(
                session, "subscription_cancellation_undone", "acme-cursos", {
                    "subscription_id": "5f0c1f7e-0000-4000-8000-000000000001", "email": "ana@example.com",
                    "actor": "buyer", "next_charge_at": datetime(2026, 12, 29, 12, 0, tzinfo=timezone.utc),
                })
        relay = OutboxRelay(engine, table, "subscriptions", rabbit_config["AMQP_URI"])
        assert relay.publish_pending() == 1
        relay.close()
        output, errors = consumer.communicate(timeout=30)
    finally:
        consumer.kill()
        engine.dispose()
    assert consumer.returncode == 0, errors
    printed = [json.loads(line) for line in output.splitlines()]
    assert [event["event_id"] for event in printed] == [recorded["event_id"]]
    assert printed[0]["data"]["next_charge_at"] == "2026-12-29T12:00:00+00:00"

    # Durable, and acknowledged: the queue outlives its consumer and holds nothing.
    connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    try:
        left = connection.channel().queue_declare(queue, durable=True, passive=True).method
    finally:
        connection.close()
    assert left.message_count == 0
    assert "services" not in EXAMPLE.read_text() and "nameko" not in EXAMPLE.read_text()
