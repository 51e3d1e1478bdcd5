"""Fixtures the integration tests of every service share."""
import uuid

import pytest
from kombu import Connection, Exchange, Queue, binding


@pytest.fixture
def event_queue(rabbit_config):
    """`event_queue("billing", "order_created")`: a queue bound to the service's event
    exchange now, before the test acts; `.get(timeout=...)` reads it."""
    connections = []

    def bind(service, *event_types):
        connection = Connection(rabbit_config["AMQP_URI"])
        connections.append(connection)
        exchange = Exchange(f"{service}.events", type="topic", durable=True)
        queue = Queue(
            f"test-{service}-{uuid.uuid4().hex[:8]}",
            bindings=[binding(exchange, routing_key=event_type) for event_type in event_types],
            exclusive=True,
        )
        return connection.SimpleQueue(queue)

    yield bind
    for connection in connections:
        connection.release()
