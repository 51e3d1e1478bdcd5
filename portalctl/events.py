"""`portalctl events …`: watch the bus and deal with what did not get through.

Plain pika, like any consumer outside the project: these commands use nothing of
nameko and only the documented names (`<service>.events`, `portal.dead-letters`,
`portal.unrouted`, the `x-portal-exchange` header).
"""
import fnmatch
import json

import pika

from services.common.callers import broker_user, caller_allowed

SERVICES = ("auth", "subscriptions", "billing", "notifications")
DEAD_LETTERS = "portal.dead-letters"
UNROUTED = "portal.unrouted"
ORIGIN_HEADER = "x-portal-exchange"


def _channel(amqp_uri):
    # kombu also accepts "pyamqp://"; pika knows the same URL as "amqp://".
    scheme, _, rest = amqp_uri.partition("://")
    connection = pika.BlockingConnection(pika.URLParameters(f"{'amqps' if scheme.endswith('s') else 'amqp'}://{rest}"))
    return connection, connection.channel()


def _line(envelope, routing_key):
    data = json.dumps(envelope.get("data", {}), ensure_ascii=False, sort_keys=True)
    return f"{envelope.get('occurred_at', '?')} {envelope.get('type', routing_key)} {envelope.get('event_id', '?')} {data}"


def tail(amqp_uri, type_pattern, emit, count=None, idle_seconds=None):
    """Print events as they are published; topic wildcards match whole words only, so
    the glob (`subscription_*`) is applied here. Stops after `count` events or
    `idle_seconds` without one, when given."""
    connection, channel = _channel(amqp_uri)
    queue = channel.queue_declare("", exclusive=True, auto_delete=True).method.queue
    for service in SERVICES:
        channel.exchange_declare(f"{service}.events", exchange_type="topic", durable=True)
        channel.queue_bind(queue, f"{service}.events", routing_key="#")
    seen = 0
    try:
        for method, _properties, body in channel.consume(queue, auto_ack=True, inactivity_timeout=idle_seconds):
            if method is None:
                break
            if fnmatch.fnmatchcase(method.routing_key, type_pattern):
                emit(_line(json.loads(body), method.routing_key))
                seen += 1
                if count and seen >= count:
                    break
    finally:
        connection.close()
    return seen


def _take_all(channel, queue):
    """Every message now in `queue`, unacknowledged, so the caller settles each."""
    taken = []
    while True:
        method, properties, body = channel.basic_get(queue, auto_ack=False)
        if method is None:
            return taken
        taken.append((method, properties, body))


def dead_letter_destination(method, properties, own_user):
    """Back to the very queue whose consumer gave up on it (the default exchange
    routes by queue name), so other consumers do not see it twice."""
    queue = (properties.headers or {}).get("x-first-death-queue")
    return ("", queue) if queue else None


def unrouted_destination(method, properties, own_user):
    """Back to the exchange it was published to, now that someone may listen; only
    if its origin's service published it (the broker vouches for `user_id`): every
    service may publish to the unrouted exchange, naming any origin."""
    exchange = (properties.headers or {}).get(ORIGIN_HEADER)
    if not exchange or not caller_allowed(properties.user_id, {exchange.removesuffix(".events")}, own_user):
        return None
    return exchange, method.routing_key


def review(amqp_uri, queue, destination, emit, type_pattern="*", send_back=None):
    """List the messages held in `queue`; with `send_back` (an event id, or "all"),
    publish the matching ones to `destination(method, properties)` and remove them."""
    connection, channel = _channel(amqp_uri)
    own_user = broker_user(amqp_uri)
    channel.confirm_delivery()
    # Declared as the services declare it, so a broker that never held one answers "none".
    channel.queue_declare(queue, durable=True)
    moved = 0
    try:
        for method, properties, body in _take_all(channel, queue):
            envelope = json.loads(body)
            chosen = fnmatch.fnmatchcase(method.routing_key, type_pattern) and send_back in (
                "all", envelope.get("event_id"))
            target = destination(method, properties, own_user) if chosen else None
            if target:
                # Sent back by the operator: handlers take a message straight to their
                # queue from the operator only.
                properties.user_id = own_user
                channel.basic_publish(target[0], target[1], body, properties)
                channel.basic_ack(method.delivery_tag)
                moved += 1
                emit(f"sent back to {target[0] or 'queue ' + target[1]}: {_line(envelope, method.routing_key)}")
            else:
                emit(_line(envelope, method.routing_key))
        # Whatever was not sent back stays, in its order.
        channel.basic_nack(delivery_tag=0, multiple=True, requeue=True)
    finally:
        connection.close()
    return moved
