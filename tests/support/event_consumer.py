"""A consumer of the portal's events exactly as a system outside the project is one:
plain pika, its own queue bound to every `<service>.events` exchange before the test
acts, nothing of nameko or of the project's code."""
import json
import time
import uuid

import pika
import requests

from support.system import MANAGEMENT_API

SERVICES = ("auth", "subscriptions", "billing", "notifications")


class EventConsumer:
    def __init__(self, amqp_uri):
        self.connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
        self.channel = self.connection.channel()
        self.queue = f"contract-{uuid.uuid4().hex[:10]}"
        self.channel.queue_declare(self.queue, exclusive=True)
        for service in SERVICES:
            self.channel.exchange_declare(f"{service}.events", exchange_type="topic", durable=True)
            self.channel.queue_bind(self.queue, f"{service}.events", routing_key="#")
        self.received = []  # (exchange, routing key, properties, envelope)

    def expect(self, event_type, timeout=30, **data):
        """The first event of `event_type` whose data has the given values (read so far
        or arriving within `timeout` s): (exchange, routing key, properties, envelope)."""
        deadline = time.monotonic() + timeout
        while True:
            for message in self.received:
                envelope = message[3]
                if envelope.get("type") == event_type and all(
                        envelope.get("data", {}).get(key) == value for key, value in data.items()):
                    return message
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {event_type} with {data} in {timeout}s")
            method, properties, body = next(self.channel.consume(self.queue, inactivity_timeout=min(remaining, 1)))
            if method is not None:
                self.channel.basic_ack(method.delivery_tag)
                self.received.append((method.exchange, method.routing_key, properties, json.loads(body)))

    def close(self):
        self.channel.cancel()
        self.connection.close()


def wait_for_consumer(vhost, queue=None, timeout=20):
    """Until a queue of `vhost` (`queue`, when named) has a consumer: a consumer in
    another process is bound and reading."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        queues = requests.get(f"{MANAGEMENT_API}/queues/{vhost}", auth=("guest", "guest"), timeout=5).json()
        if any(found.get("consumers") and queue in (None, found["name"]) for found in queues):
            return
        time.sleep(0.2)
    raise AssertionError(f"no consumer on {queue or 'any queue'} of {vhost} in {timeout}s")
