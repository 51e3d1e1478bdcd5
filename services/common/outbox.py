"""Transactional outbox: an event is committed with the state change it reports.

A service writes the envelope into its own `outbox` table inside the same
transaction as the change (`Outbox.record`). A relay running in every process of the
service publishes unsent rows to `<service>.events` in batches with publisher confirms,
and marks a batch sent only after the broker confirmed every message of it (one wait
per batch, not one per message: the broker confirms in the order it was sent). A crash between commit and publish, or a
broker that is away, delays events; it never loses them. Delivery is at least once,
so consumers deduplicate by `event_id`.
"""
import json
import logging
import threading

import eventlet
from kombu import Connection, Exchange, Producer, Queue
from nameko.extensions import DependencyProvider
from sqlalchemy import BigInteger, Column, Integer, String, Table, Text, event, func, select, update

from services.common import clock
from services.common.callers import broker_user
from services.common.db import UTCDateTime, is_postgres, make_engine
from services.common.observability import OUTBOX_BACKLOG

log = logging.getLogger(__name__)


def outbox_table(metadata):
    """The `outbox` table, added to a service's own metadata (and migrations)."""
    return Table(
        "outbox",
        metadata,
        Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
        Column("event_id", String(36), nullable=False, unique=True),
        Column("event_type", String(100), nullable=False),
        Column("payload", Text, nullable=False),
        Column("created_at", UTCDateTime, nullable=False),
        Column("published_at", UTCDateTime, nullable=True, index=True),
    )


def event_exchange(service_name):
    # Declared exactly as nameko's event handlers declare it, so both agree.
    return Exchange(f"{service_name}.events", type="topic", durable=True)


# Events that no queue was bound for when they were published are kept here, with
# their exchange and routing key, until a consumer replays them (`portalctl events
# unrouted --replay`): an event nobody listened for yet is not lost.
UNROUTED_EXCHANGE = Exchange("portal.unrouted", type="fanout", durable=True)
UNROUTED_QUEUE = Queue("portal.unrouted", exchange=UNROUTED_EXCHANGE, durable=True)
ORIGIN_HEADER = "x-portal-exchange"
# How long a batch waits for the broker's confirms before it is tried again.
CONFIRM_TIMEOUT_SECONDS = 10


class PublishNotConfirmed(Exception):
    """The broker refused (nacked) a message, or did not confirm it in time."""


class OutboxRelay:
    """Publishes committed, unsent outbox rows; plain Python, usable without nameko."""

    def __init__(self, engine, table, service_name, amqp_uri, batch_size=100):
        self.engine = engine
        self.table = table
        self.exchange = event_exchange(service_name)
        self.amqp_uri = amqp_uri
        self.user = broker_user(amqp_uri)
        self.batch_size = batch_size
        self._connection = None
        self._producer = None
        self._returned = set()
        # Publisher confirms of the channel: messages sent, confirmed, and refused.
        self._sent = 0
        self._confirmed = 0
        self._nacked = False

    def _get_producer(self):
        if self._producer is None:
            connection = Connection(self.amqp_uri, connect_timeout=5)
            channel = connection.channel()
            self.exchange(channel).declare()
            UNROUTED_QUEUE(channel).declare()
            # The broker returns an unroutable mandatory message before it confirms
            # it, so once a batch is confirmed its returns are known.
            channel.events["basic_return"].add(self._on_return)
            channel.events["basic_ack"].add(self._on_ack)
            channel.events["basic_nack"].add(self._on_nack)
            channel.confirm_select()
            self._sent = self._confirmed = 0
            self._nacked = False
            self._connection = connection
            self._producer = Producer(channel, exchange=self.exchange, serializer="json")
        return self._producer

    def _on_return(self, exc, exchange, routing_key, message):
        self._returned.add(message.properties.get("message_id"))

    def _on_ack(self, delivery_tag, multiple):
        # Tags count the channel's messages from 1; `multiple` confirms all up to it.
        self._confirmed = max(self._confirmed, delivery_tag)

    def _on_nack(self, delivery_tag, multiple):
        self._nacked = True
        self._confirmed = max(self._confirmed, delivery_tag)

    def _send(self, producer, envelope, event_type, exchange=None):
        properties = {
            "delivery_mode": 2, "message_id": envelope["event_id"], "type": event_type, "retry": False,
            # Where the event belongs, so a dead-lettered or unrouted copy can be sent back.
            "headers": {ORIGIN_HEADER: self.exchange.name},
            # The broker checks it is ours: an unrouted copy is sent back only as the origin's.
            "user_id": self.user,
        }
        if exchange is None:
            producer.publish(envelope, routing_key=event_type, mandatory=True, **properties)
        else:
            producer.publish(envelope, exchange=exchange, routing_key=event_type, **properties)
        self._sent += 1

    def _wait_for_confirms(self):
        """Until the broker has confirmed every message sent so far; raises if it
        refused one or took too long (the batch is then sent again: at least once)."""
        with eventlet.Timeout(CONFIRM_TIMEOUT_SECONDS, PublishNotConfirmed("no confirm in time")):
            while self._confirmed < self._sent:
                self._connection.drain_events()
        if self._nacked:
            raise PublishNotConfirmed("the broker refused a message")

    def _publish_batch(self, producer, events):
        """Publish (envelope, event_type) pairs in order; each one no queue was bound
        for goes again to the unrouted exchange. Returns once all are confirmed."""
        for envelope, event_type in events:
            self._send(producer, envelope, event_type)
        self._wait_for_confirms()
        unrouted = [(envelope, event_type) for envelope, event_type in events
                    if envelope["event_id"] in self._returned]
        for envelope, event_type in unrouted:
            self._returned.discard(envelope["event_id"])
            self._send(producer, envelope, event_type, exchange=UNROUTED_EXCHANGE)
        if unrouted:
            self._wait_for_confirms()

    def close(self):
        if self._connection is not None:
            try:
                self._connection.release()
            except Exception:  # the connection is already broken; nothing to release
                pass
        self._connection = None
        self._producer = None

    def publish_pending(self):
        """Publish one batch; return how many rows were sent. Raises on broker errors."""
        table = self.table
        query = (
            select(table.c.id, table.c.event_type, table.c.payload)
            .where(table.c.published_at.is_(None))
            .order_by(table.c.id)
            .limit(self.batch_size)
        )
        if is_postgres(self.engine):
            # Replicas of a service each take different rows.
            query = query.with_for_update(skip_locked=True)
        with self.engine.begin() as connection:
            rows = connection.execute(query).all()
            if not rows:
                return 0
            try:
                producer = self._get_producer()
                self._publish_batch(producer, [(json.loads(row.payload), row.event_type) for row in rows])
            except (Exception, eventlet.Timeout):
                self.close()
                raise
            connection.execute(
                update(table)
                .where(table.c.id.in_([row.id for row in rows]))
                .values(published_at=clock.now())
            )
        return len(rows)

    def backlog(self):
        with self.engine.connect() as connection:
            query = select(func.count()).select_from(self.table).where(self.table.c.published_at.is_(None))
            return connection.execute(query).scalar_one()


class Recorder:
    """What a worker uses to add an event to the current transaction.

    The transaction's events are inserted together, in the order they were recorded,
    just before it commits: one statement for all of them instead of one (and an
    autoflush of the session) for each."""

    def __init__(self, table, catalog, wake):
        self._table = table
        self._catalog = catalog
        self._wake = wake

    def record(self, session, event_type, merchant_id, data):
        envelope = self._catalog[event_type].envelope(merchant_id, data)
        self._pending(session).append({
            "event_id": envelope["event_id"],
            "event_type": event_type,
            "payload": json.dumps(envelope),
            "created_at": clock.now(),
        })
        return envelope

    def _pending(self, session):
        key = ("outbox", self._table.name)
        pending = session.info.get(key)
        if pending is None:
            pending = session.info[key] = []

            def insert(_session):
                rows = session.info.pop(key, None)
                if rows:
                    session.execute(self._table.insert(), rows)

            event.listen(session, "before_commit", insert, once=True)
            # Publish as soon as the change is committed instead of at the next poll.
            event.listen(session, "after_commit", lambda _session: self._wake.set(), once=True)
            event.listen(session, "after_rollback", lambda _session: session.info.pop(key, None), once=True)
        return pending


class Outbox(DependencyProvider):
    """nameko dependency: `Recorder` for workers, and the relay loop of this process."""

    def __init__(self, url_key, table, catalog):
        self.url_key = url_key
        self.table = table
        self.catalog = catalog
        self.wake = threading.Event()
        self.relay = None
        self._stopping = threading.Event()
        self._relay_thread = None

    def setup(self):
        config = self.container.config
        self.poll_interval = float(config.get("OUTBOX_POLL_INTERVAL", 1))
        self.relay = OutboxRelay(
            make_engine(config[self.url_key]), self.table,
            self.container.service_name, config["AMQP_URI"],
        )

    def start(self):
        self._stopping.clear()
        self._relay_thread = self.container.spawn_managed_thread(self._relay_forever)

    def stop(self):
        # The pass in flight is bounded (its own timeout, the broker's connect and confirm
        # timeouts): let it mark its rows published rather than have nameko kill it and
        # the next process send them again.
        self._stopping.set()
        self.wake.set()
        if self._relay_thread is not None:
            self._relay_thread.wait()
        self.kill()

    def kill(self):
        self._stopping.set()
        self.relay.close()
        self.relay.engine.dispose()

    def get_dependency(self, worker_ctx):
        return Recorder(self.table, self.catalog, self.wake)

    def _relay_forever(self):
        failures = 0
        while not self._stopping.is_set():
            self.wake.clear()
            try:
                with eventlet.Timeout(30):
                    sent = self.relay.publish_pending()
                failures = 0
            except (Exception, eventlet.Timeout) as exc:
                failures += 1
                self.relay.close()
                log.warning("outbox relay cannot publish (attempt %s): %s", failures, exc)
                self._stopping.wait(min(2 ** failures, 30) * 0.25)
                continue
            if sent < self.relay.batch_size and not self._stopping.is_set():
                OUTBOX_BACKLOG.labels(self.container.service_name).set(self.relay.backlog())
                self.wake.wait(self.poll_interval)
