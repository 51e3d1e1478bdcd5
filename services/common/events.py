"""Consuming events without losing or looping on them.

`event_handler("billing", "order_paid")` is nameko's service-pool handler with three
changes: its queue is a quorum queue with a delivery limit and a dead-letter exchange;
a handler that raises returns the message to the queue instead of dropping it (nameko's
default); a body that cannot be decoded is dead-lettered at once; and after the limit
the broker moves a failing message to the dead-letter queue, where
`portalctl events dead-letters` shows it, while the next messages keep flowing.
A handler that failed because a dependency did not answer (`ServiceUnavailable`: a
service, the database) gives its message back only after a pause that doubles with
each delivery (1, 2, 4, 8 s, at most `EVENT_RETRY_MAX_DELAY_SECONDS`), so the limit
spans an outage of half a minute instead of five redeliveries within a second; the
broker counts a delivery to a consumer that died without acknowledging it too.
Handlers stay idempotent by `event_id` (see `Inbox`), since delivery is at least once.
A handler takes only what came through its source's exchange (`<service>.events`,
where only that service may publish), or straight to its queue from the operator
(`portalctl events dead-letters --send-back`); anything else was put in its queue
through the default exchange by someone else, and is dropped.
"""
import logging

import eventlet
from kombu import Exchange, Queue
from nameko.amqp.publish import get_connection
from nameko.events import SERVICE_POOL, EventHandler
from nameko.messaging import Consumer, QueueConsumer
from sqlalchemy import Column, String, Table, select

from services.common import clock
from services.common.db import UTCDateTime
from services.common.errors import ServiceUnavailable
from services.common.outbox import event_exchange
from services.common.callers import OPERATOR, broker_user, caller_allowed

DEAD_LETTER_EXCHANGE = Exchange("portal.dead-letters", type="topic", durable=True)
DEAD_LETTER_QUEUE = Queue(
    "portal.dead-letters", exchange=DEAD_LETTER_EXCHANGE, routing_key="#", durable=True,
)
DEFAULT_DELIVERY_LIMIT = 5
DEFAULT_RETRY_MAX_DELAY_SECONDS = 10

log = logging.getLogger(__name__)


def consumer_queue_arguments(delivery_limit):
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": delivery_limit,
        "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE.name,
    }


class DeadLetteringQueueConsumer(QueueConsumer):
    """nameko's queue consumer, except that a message it cannot even decode (a body
    that is not JSON) goes straight to the dead-letter queue: left to kombu, the error
    would break the connection on every redelivery instead."""

    def get_consumers(self, consumer_cls, channel):
        consumers = super().get_consumers(consumer_cls, channel)
        for consumer in consumers:
            consumer.on_decode_error = self._dead_letter
        return consumers

    @staticmethod
    def _dead_letter(message, error):
        log.warning("dead-lettering an undecodable message from %s: %s",
                    message.delivery_info.get("routing_key"), type(error).__name__)
        message.reject(requeue=False)


class ReliableEventHandler(EventHandler):
    queue_consumer = DeadLetteringQueueConsumer()

    def __init__(self, source_service, event_type, **kwargs):
        kwargs.setdefault("requeue_on_error", True)
        super().__init__(source_service, event_type, handler_type=SERVICE_POOL, reliable_delivery=True, **kwargs)

    def setup(self):
        config = self.container.config
        limit = int(config.get("EVENT_DELIVERY_LIMIT", DEFAULT_DELIVERY_LIMIT))
        self.queue = Queue(
            f"evt-{self.source_service}-{self.event_type}--{self.container.service_name}.{self.method_name}",
            exchange=event_exchange(self.source_service),
            routing_key=self.event_type,
            durable=True,
            queue_arguments=consumer_queue_arguments(limit),
        )
        # The dead-letter exchange must exist before the first message dies, or the
        # broker drops that message silently; and the handler's queue is bound before
        # the service answers anything, so no event published from then on misses it.
        with get_connection(config["AMQP_URI"]) as connection:
            channel = connection.channel()
            DEAD_LETTER_EXCHANGE(channel).declare()
            DEAD_LETTER_QUEUE(channel).declare()
            self.queue(channel).declare()
        self.retry_max_delay = float(config.get("EVENT_RETRY_MAX_DELAY_SECONDS", DEFAULT_RETRY_MAX_DELAY_SECONDS))
        self.own_user = broker_user(config["AMQP_URI"])
        Consumer.setup(self)

    def handle_message(self, body, message):
        exchange, sender = message.delivery_info.get("exchange"), message.properties.get("user_id")
        if not from_its_source(exchange, sender, self.queue.exchange.name, self.own_user):
            log.warning("dropped a message in %s that did not come through %s (exchange %r, user %r)",
                        self.queue.name, self.queue.exchange.name, exchange, sender)
            self.queue_consumer.ack_message(message)
            return
        super().handle_message(body, message)

    def handle_result(self, message, worker_ctx, result=None, exc_info=None):
        if exc_info is not None and isinstance(exc_info[1], ServiceUnavailable):
            eventlet.sleep(retry_delay(message.headers.get("x-delivery-count", 0), self.retry_max_delay))
        return super().handle_result(message, worker_ctx, result, exc_info)


def from_its_source(exchange, sender, source_exchange, own_user):
    """Whether an event delivered from `exchange` by the broker user `sender` is one
    its handler may act on: published to its source's exchange, or sent back straight
    to the queue (the default exchange, "") by the operator."""
    return exchange == source_exchange or (exchange == "" and caller_allowed(sender, {OPERATOR}, own_user))


def retry_delay(deliveries_before, max_delay):
    """Seconds to wait before giving back a message whose handler's dependency did not
    answer, after `deliveries_before` earlier deliveries (the queue's x-delivery-count)."""
    return min(2 ** deliveries_before, max_delay)


event_handler = ReliableEventHandler.decorator


def inbox_table(metadata):
    """Ids of the events a service has already acted on (one row per handler)."""
    return Table(
        "inbox",
        metadata,
        Column("event_id", String(36), primary_key=True),
        Column("handler", String(100), primary_key=True),
        Column("processed_at", UTCDateTime, nullable=False),
    )


def first_delivery(session, table, event_id, handler):
    """Record `event_id` for `handler` in this transaction; False if it was already done.

    Committed together with the handler's effects, so a redelivery after a crash
    either finds both or neither. A concurrent duplicate fails on the primary key
    and is redelivered, then seen here as done.
    """
    seen = session.execute(
        select(table.c.event_id).where(table.c.event_id == event_id, table.c.handler == handler)
    ).first()
    if seen:
        return False
    session.execute(table.insert().values(event_id=event_id, handler=handler, processed_at=clock.now()))
    return True
