"""RPC between services, always with a deadline, over one broker link per process.

nameko's in-service `RpcProxy` waits for an answer forever, and pays for every call
with a producer from a pool, a retry wrapper and a publisher confirm, then takes the
answer from a reply queue of its own. `TimedRpc` gives workers a proxy whose calls
raise `ServiceUnavailable` after `RPC_TIMEOUT` seconds (or a per-call timeout), sent
through `RpcLink`: one long-lived connection and channel per process, drained by one
green thread, answered through RabbitMQ's direct reply-to (`amq.rabbitmq.reply-to`),
so there is no reply queue to declare, to lose while cut off, or to expire.

A request is void once its deadline passes, so it expires on the broker at that
moment and neither it nor its reply is written to the broker's disk or confirmed: a
request or reply lost with a broker is a call that times out, which the caller
answers as 503 and retries, exactly as if the broker had kept it. When the link
breaks, the calls under way fail at once (their answers could only come back on that
channel); later calls wait for the link's return within their own deadline. A
request is published `mandatory`, so a call to a service whose queue does not exist
comes back from the broker and fails at once; a service whose queue exists but has
no consumer fails at the deadline.

Every service's entrypoints use this module's `rpc`, whose replies go out through
the same link, non-persistent, keeping nameko's wire format: any nameko caller
(`ClusterRpcProxy`, portalctl) still gets its answer on its own reply queue.
"""
import itertools
import logging
import socket
import time
import uuid

import eventlet
import kombu
import kombu.serialization
from amqp import Message
from amqp.exceptions import ConnectionError as AmqpConnectionError
from eventlet.event import Event
from eventlet.semaphore import Semaphore
from kombu.exceptions import OperationalError
from nameko.constants import (
    AMQP_SSL_CONFIG_KEY, AMQP_URI_CONFIG_KEY, DEFAULT_HEARTBEAT, DEFAULT_SERIALIZER, HEARTBEAT_CONFIG_KEY,
    LOGIN_METHOD_CONFIG_KEY, NON_PERSISTENT, SERIALIZER_CONFIG_KEY,
)
from nameko.exceptions import deserialize
from nameko.extensions import DependencyProvider
from nameko.messaging import HeaderEncoder
from nameko.rpc import Responder, Rpc, RpcConsumer, get_rpc_exchange

from services.common import clock
from services.common.errors import PortalError, ServiceUnavailable
from services.common.logs import WithoutRpcReplyBodies
from services.common.observability import RPC_CLIENT_SECONDS

log = logging.getLogger(__name__)
# nameko's own proxies (portalctl's, the tests') log every reply's whole body at DEBUG,
# and replies may carry secrets (a new session's token).
logging.getLogger("nameko.rpc").addFilter(WithoutRpcReplyBodies())

DEFAULT_TIMEOUT = 5.0
DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"
# What publishing raises when the broker is away or the connection broke.
BROKER_ERRORS = (OSError, OperationalError, AmqpConnectionError)
CONNECT_TIMEOUT = 5.0
# How often the drainer sends or checks heartbeats (at least twice per interval).
DRAIN_INTERVAL = 1.0
CLOSE_TIMEOUT = 1.0
READ_CHUNK = 65536
# Waits between reconnection attempts: short at first, a broker restart takes seconds.
RECONNECT_DELAYS = (0.2, 0.5, 1.0, 2.0)
# A reply waits this long at most for the link to come back (see `RpcLink.reply`).
REPLY_LINK_WAIT = 5.0
# Replies are read as what requests are sent as (never pickle).
ACCEPTED_CONTENT = {"application/json"}


class LinkDown(AmqpConnectionError):
    """The process's RPC link is not up, or broke while a call was under way."""


class ServiceAbsent(Exception):
    """The broker returned a request: no queue takes the service's calls."""


class NoAnswerInTime(Exception):
    """The call's deadline passed before its answer came."""


class RpcLink:
    """One process's connection and channel for RPC, shared by every container in it
    that calls or answers over `amqp_uri`; see the module's docstring."""

    _shared = {}

    def __init__(self, amqp_uri, exchange, ssl=None, login_method=None, heartbeat=DEFAULT_HEARTBEAT):
        self.amqp_uri = amqp_uri
        self.exchange_name = exchange.name
        self._exchange = exchange
        self._connection_options = {"ssl": ssl, "login_method": login_method, "heartbeat": heartbeat}
        self._users = 0
        self._calls = {}  # correlation id -> the call's Event
        self._send_lock = Semaphore()  # one frame sequence at a time on the socket
        self._up = Event()
        self._channel = None
        self._connection = None
        self._drainer = None

    @classmethod
    def acquire(cls, config):
        """The process's link for this container's broker, started on first use."""
        amqp_uri = config[AMQP_URI_CONFIG_KEY]
        link = cls._shared.get(amqp_uri)
        if link is None:
            link = cls._shared[amqp_uri] = cls(
                amqp_uri, get_rpc_exchange(config), ssl=config.get(AMQP_SSL_CONFIG_KEY),
                login_method=config.get(LOGIN_METHOD_CONFIG_KEY),
                heartbeat=config.get(HEARTBEAT_CONFIG_KEY, DEFAULT_HEARTBEAT),
            )
        link._users += 1
        if link._drainer is None:
            link._drainer = eventlet.spawn(link._run)
        return link

    def release(self):
        """Closed when its last user lets go (a container stopping)."""
        self._users -= 1
        if self._users == 0:
            del self._shared[self.amqp_uri]
            self._drainer.kill()

    def wait_until_up(self, timeout):
        if self._channel is None and timeout > 0:
            self._up.wait(timeout)
        return self._channel is not None

    def call(self, routing_key, body, headers, deadline):
        """Publish a request that expires at `deadline` (monotonic); the Event it
        returns gets the reply message."""
        if not self.wait_until_up(deadline - time.monotonic()):
            raise LinkDown("no link to the broker")
        correlation_id = uuid.uuid4().hex
        content_type, content_encoding, data = kombu.serialization.dumps(body, DEFAULT_SERIALIZER)
        expires_in_ms = max(int((deadline - time.monotonic()) * 1000), 1)
        message = Message(
            data, content_type=content_type, content_encoding=content_encoding, delivery_mode=NON_PERSISTENT,
            expiration=str(expires_in_ms), correlation_id=correlation_id, reply_to=DIRECT_REPLY_TO,
            application_headers=headers,
        )
        answered = self._calls[correlation_id] = Event()
        try:
            self._publish(message, self.exchange_name, routing_key, mandatory=True)
        except BaseException:
            self.forget(correlation_id)
            raise
        return correlation_id, answered

    def forget(self, correlation_id):
        """The caller stopped waiting: a reply that comes later is dropped."""
        self._calls.pop(correlation_id, None)

    def reply(self, payload, serializer, routing_key, correlation_id):
        """Answer a request: through the default exchange to a direct reply-to
        address, else through the RPC exchange to a nameko reply queue. Not
        sent while the link is down beyond `REPLY_LINK_WAIT`: the request, not
        acknowledged, is then delivered again."""
        if not self.wait_until_up(REPLY_LINK_WAIT):
            raise LinkDown("no link to the broker")
        content_type, content_encoding, data = kombu.serialization.dumps(payload, serializer)
        message = Message(data, content_type=content_type, content_encoding=content_encoding,
                          delivery_mode=NON_PERSISTENT, correlation_id=correlation_id)
        exchange = "" if routing_key.startswith(DIRECT_REPLY_TO) else self.exchange_name
        self._publish(message, exchange, routing_key)

    def _publish(self, message, exchange, routing_key, mandatory=False):
        channel = self._channel
        if channel is None:
            raise LinkDown("no link to the broker")
        with self._send_lock:
            channel.basic_publish(message, exchange=exchange, routing_key=routing_key, mandatory=mandatory)

    def _run(self):
        delays = itertools.chain(RECONNECT_DELAYS, itertools.repeat(RECONNECT_DELAYS[-1]))
        try:
            while True:
                try:
                    self._connect()
                    delays = itertools.chain(RECONNECT_DELAYS, itertools.repeat(RECONNECT_DELAYS[-1]))
                    self._drain()
                except Exception as error:  # whatever broke the link, a new one is the cure
                    log.warning("RPC link to the broker down (%r); reconnecting", error)
                    self._drop("the broker connection broke")
                eventlet.sleep(next(delays))
        finally:
            self._drop("the RPC link closed", close=True)

    def _connect(self):
        connection = kombu.Connection(self.amqp_uri, connect_timeout=CONNECT_TIMEOUT, **self._connection_options)
        self._connection = connection
        connection.connect()
        # Only the drainer may read the socket; py-amqp would otherwise look for a
        # `connection.blocked` notice on every publish, a second reader racing it.
        # The drainer still reads such notices.
        connection.connection.client_properties.get("capabilities", {})["connection.blocked"] = False
        _read_in_chunks(connection.connection.transport)
        channel = connection.channel()
        # The exchange must exist, or a request to it would close the channel.
        self._exchange(channel).declare()
        channel.events["basic_return"].add(self._on_return)
        channel.basic_consume(DIRECT_REPLY_TO, no_ack=True, callback=self._on_reply)
        self._channel = channel
        self._up.send()
        log.info("RPC link to the broker up")

    def _drain(self):
        connection = self._connection
        checked = time.monotonic()
        while True:
            try:
                connection.drain_events(timeout=DRAIN_INTERVAL)
            except socket.timeout:
                pass
            if time.monotonic() - checked >= DRAIN_INTERVAL:
                checked = time.monotonic()
                with self._send_lock:
                    connection.heartbeat_check()

    def _drop(self, reason, close=False):
        """Mark the link down and fail every call under way; `close` says goodbye
        to the broker first, as a stopping process should."""
        self._channel = None
        if self._up.ready():
            self._up = Event()
        calls, self._calls = self._calls, {}
        for answered in calls.values():
            answered.send_exception(LinkDown(reason))
        connection, self._connection = self._connection, None
        if connection is None:
            return
        if close:
            with eventlet.Timeout(CLOSE_TIMEOUT, False):
                try:
                    connection.release()
                except BROKER_ERRORS:
                    pass  # gone already
        connection.collect()

    def _on_reply(self, message):
        # Decoded by the caller, so that no reply can stop the drainer.
        answered = self._calls.pop(message.properties.get("correlation_id"), None)
        if answered is not None:
            answered.send(message)

    def _on_return(self, error, exchange, routing_key, message):
        answered = self._calls.pop(message.properties.get("correlation_id"), None)
        if answered is not None:
            answered.send_exception(ServiceAbsent(routing_key))


def _read_in_chunks(transport):
    """py-amqp reads exactly what each part of a frame needs, three to four
    `recv` calls a frame; reading what the socket has (py-amqp keeps what is
    beyond the frame for the next one) makes it about one a message."""
    if getattr(transport, "_quick_recv", None) != getattr(transport.sock, "recv", None):
        return  # TLS reads through its own buffer
    recv = transport.sock.recv
    transport._quick_recv = lambda size: recv(max(size, READ_CHUNK))


class PendingCall:
    """An RPC under way; `result()` waits at most until its deadline."""

    def __init__(self, link, service_name, method_name, correlation_id, answered, deadline):
        self.service_name = service_name
        self.method_name = method_name
        self._link = link
        self._correlation_id = correlation_id
        self._answered = answered
        self._deadline = deadline

    def result(self):
        started = time.perf_counter()
        outcome = "error"
        try:
            message = self._answered.wait(max(self._deadline - time.monotonic(), 0))
            if message is None:  # what the wait gives when its time ran out
                raise NoAnswerInTime()
            body = kombu.serialization.loads(
                message.body, message.properties.get("content_type"), message.properties.get("content_encoding"),
                accept=ACCEPTED_CONTENT)
            error = body.get("error")
            if error:
                raise deserialize(error)
            outcome = "ok"
            return body["result"]
        except NoAnswerInTime:
            outcome = "timeout"
            self._link.forget(self._correlation_id)
            raise ServiceUnavailable(
                f"{self.service_name} did not answer in time.", fields={"service": self.service_name},
            ) from None
        except ServiceAbsent:
            outcome = "absent"
            raise _not_running(self.service_name) from None
        except LinkDown:
            outcome = "link_down"
            raise _unreachable(self.service_name) from None
        except PortalError:
            outcome = "refused"
            raise
        finally:
            RPC_CLIENT_SECONDS.labels(self.service_name, self.method_name, outcome).observe(
                time.perf_counter() - started)


def _not_running(service_name):
    return ServiceUnavailable(f"{service_name} is not running.", fields={"service": service_name})


def _unreachable(service_name):
    return ServiceUnavailable(f"{service_name} cannot be reached now.", fields={"service": service_name})


class TimedMethod(HeaderEncoder):
    def __init__(self, link, worker_ctx, service_name, method_name, timeout):
        self._link = link
        self._worker_ctx = worker_ctx
        self._service_name = service_name
        self._method_name = method_name
        self._timeout = timeout

    def call_async(self, *args, **kwargs):
        started = time.monotonic()
        deadline = started + self._timeout
        # nameko's context data (correlation id, call stack) travels as headers.
        headers = self.get_message_headers(self._worker_ctx)
        try:
            correlation_id, answered = self._link.call(
                f"{self._service_name}.{self._method_name}", {"args": args, "kwargs": kwargs}, headers, deadline)
        except BROKER_ERRORS:
            RPC_CLIENT_SECONDS.labels(self._service_name, self._method_name, "unsent").observe(
                time.monotonic() - started)
            raise _unreachable(self._service_name) from None
        return PendingCall(self._link, self._service_name, self._method_name, correlation_id, answered, deadline)

    def __call__(self, *args, **kwargs):
        return self.call_async(*args, **kwargs).result()


class TimedServiceProxy:
    def __init__(self, link, worker_ctx, service_name, timeout):
        self._link = link
        self._worker_ctx = worker_ctx
        self._service_name = service_name
        self._timeout = timeout

    def __getattr__(self, method_name):
        return TimedMethod(self._link, self._worker_ctx, self._service_name, method_name, self._timeout)

    def with_timeout(self, timeout):
        return TimedServiceProxy(self._link, self._worker_ctx, self._service_name, timeout)


class TimedRpc(DependencyProvider):
    """A worker's proxy to `target_service`, whose calls time out (see above)."""

    link = None

    def __init__(self, target_service):
        self.target_service = target_service

    def setup(self):
        self.timeout = float(self.container.config.get("RPC_TIMEOUT", DEFAULT_TIMEOUT))
        self.link = RpcLink.acquire(self.container.config)

    def stop(self):
        # After the container's workers ended: no call of theirs is left under way.
        self._release()

    def kill(self):
        self._release()

    def _release(self):
        if self.link is not None:
            self.link.release()
            self.link = None

    def get_dependency(self, worker_ctx):
        return TimedServiceProxy(self.link, worker_ctx, self.target_service, self.timeout)


class LinkResponder(Responder):
    """nameko's responder (its payload, its serialization check), sending through the
    process's `RpcLink` instead of a producer from a pool."""

    def __init__(self, link, serializer, message):
        super().__init__(link.amqp_uri, None, serializer, message)
        self._link = link

    def publisher_cls(self, *args, **kwargs):
        return self

    def publish(self, payload, serializer, exchange, routing_key, correlation_id):
        self._link.reply(payload, serializer, routing_key, correlation_id)


class ReplyConsumer(RpcConsumer):
    """nameko's RPC consumer, answering through the process's `RpcLink`."""

    link = None

    def setup(self):
        if self.link is None:
            self.link = RpcLink.acquire(self.container.config)
        super().setup()

    def stop(self):
        super().stop()
        self._release()

    def kill(self):
        super().kill()
        self._release()

    def _release(self):
        if self.link is not None:
            self.link.release()
            self.link = None

    def handle_result(self, message, result, exc_info):
        serializer = self.container.config.get(SERIALIZER_CONFIG_KEY, DEFAULT_SERIALIZER)
        result, exc_info = LinkResponder(self.link, serializer, message).send_response(result, exc_info)
        self.queue_consumer.ack_message(message)
        return result, exc_info


class PortalRpc(Rpc):
    # One consumer serves a service's whole queue: every RPC entrypoint of a service
    # must be this one, or two consumers would share `rpc-<service>`.
    rpc_consumer = ReplyConsumer()


rpc = PortalRpc.decorator


class Pingable:
    """Mixin: every service answers `ping`, which `/status` uses to see it alive.

    A module that imports this mixin holds a class with an entrypoint, so start a
    service by naming its class: `nameko run services.auth.service:AuthService`.
    """

    @rpc
    def ping(self):
        return {"service": self.name, "time": clock.now().isoformat()}
