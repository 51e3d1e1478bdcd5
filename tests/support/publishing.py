"""The one way the tests publish to RabbitMQ: on a channel in confirm mode, returning
only once the broker has confirmed every message.

Without confirms a burst can be lost: a quorum queue's leader on RabbitMQ 3.10 may
handle the publishing channel's "down" notice (the connection closed right after the
burst) before the burst's last messages, and drop those, with no dead letter and no
counter. A confirm says the queue holds the message. `tests/unit/test_publishers.py`
fails on any other publisher in tests/ (docs/events.md states the rule)."""
import socket
import time

import amqp
from kombu import Connection, Producer

from services.common.outbox import PublishNotConfirmed

CONFIRM_TIMEOUT_SECONDS = 30


def publish_confirmed(amqp_uri, exchange, *bodies, routing_key=None, mandatory=True, **properties):
    """Publish `bodies` to the kombu `exchange` (declared first), persistent, JSON
    unless `properties` (kombu's publish arguments) say otherwise.

    A body's routing key is `routing_key` or, for an event envelope, its type; an
    envelope's event id is its `message_id`: as an outbox relay publishes it. Raises
    `PublishNotConfirmed` if the broker refuses a message, does not confirm them all
    within 30 s, or (with `mandatory`, the default) finds no queue for one."""
    confirmed, refused, returned = [0], [], []

    def on_ack(delivery_tag, multiple):
        # Tags count the channel's messages from 1; `multiple` confirms all up to it.
        confirmed[0] = max(confirmed[0], delivery_tag)

    def on_nack(delivery_tag, multiple):
        refused.append(delivery_tag)
        on_ack(delivery_tag, multiple)

    def on_return(exc, exchange, routing_key, message):
        # The broker returns an unroutable message before it confirms it.
        returned.append(f"{exchange} {routing_key}: {exc}")

    with Connection(amqp_uri, connect_timeout=5) as connection:
        channel = connection.channel()
        channel.events["basic_ack"].add(on_ack)
        channel.events["basic_nack"].add(on_nack)
        channel.events["basic_return"].add(on_return)
        channel.confirm_select()
        producer = Producer(channel, exchange=exchange, serializer="json")
        for body in bodies:
            is_envelope = isinstance(body, dict) and "event_id" in body
            producer.publish(
                body, routing_key=routing_key or body["type"], mandatory=mandatory, delivery_mode=2,
                **({"message_id": body["event_id"]} if is_envelope else {}), **properties,
            )
        deadline = time.monotonic() + CONFIRM_TIMEOUT_SECONDS
        while confirmed[0] < len(bodies):
            try:
                connection.drain_events(timeout=max(deadline - time.monotonic(), 0.01))
            except socket.timeout:
                raise PublishNotConfirmed(
                    f"{exchange.name}: {confirmed[0]} of {len(bodies)} confirmed in {CONFIRM_TIMEOUT_SECONDS} s"
                ) from None
    if refused or returned:
        raise PublishNotConfirmed(f"{exchange.name}: refused {refused}, returned {returned}")


def publish_one_as_is(amqp_uri, exchange_name, routing_key, body=b"{}", **properties):
    """Publish one message to the exchange named `exchange_name`, declaring nothing,
    and wait for the broker's confirm: what the broker refuses (a permission, a forged
    `user_id`) is raised as its own error (py-amqp's), for tests of those refusals."""
    parts = Connection(amqp_uri)
    connection = amqp.Connection(
        f"{parts.hostname}:{parts.port}", userid=parts.userid, password=parts.password,
        virtual_host=parts.virtual_host, confirm_publish=True, connect_timeout=5,
    )
    connection.connect()
    try:
        connection.channel().basic_publish(amqp.Message(body, **properties), exchange_name, routing_key)
    finally:
        connection.collect()
