"""Fixtures the integration tests of every service share."""
import uuid
from urllib.parse import urlparse

import pytest
from kombu import Connection, Exchange, Queue, binding

from devtools.fake_asaas import Running
from devtools.fake_mercadopago import Running as RunningMercadoPago
from support.tcp_proxy import TcpProxy


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


@pytest.fixture
def broker_proxy(rabbit_config):
    """(a TcpProxy to this test's broker, the AMQP URI of this test's vhost through it):
    a process given that URI loses the broker when the test cuts the proxy."""
    uri = urlparse(rabbit_config["AMQP_URI"])
    proxy = TcpProxy(uri.hostname, uri.port or 5672)
    yield proxy, f"amqp://{uri.username}:{uri.password}@127.0.0.1:{proxy.port}/{rabbit_config['vhost']}"
    proxy.close()


@pytest.fixture
def fake_asaas():
    """devtools' fake Asaas on a free port: `.url` (its /v3 base), `.fake` (its state)."""
    running = Running()
    yield running
    running.stop()


@pytest.fixture
def fake_mercadopago():
    """devtools' fake Mercado Pago on a free port: `.url` (its base), `.fake` (its state)."""
    running = RunningMercadoPago()
    yield running
    running.stop()
