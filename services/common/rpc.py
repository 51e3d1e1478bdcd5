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

Every service's entrypoints use this module's `rpc`, served through the same link:
its requests come from nameko's queue (`rpc-<service>`, prefetch `max_workers`),
each goes straight to a worker, and is answered, non-persistent, and acknowledged
on the channel it came on, keeping nameko's wire format: any nameko caller
(`ClusterRpcProxy`, portalctl) still gets its answer on its own reply queue. A stock
nameko `@rpc` cannot answer `TimedRpc`: it would send to the RPC exchange what must
go to the default one.

`BrokerCheck` asks over the same link whether the broker answers (the gateway's
`/readyz`): a message it cannot route comes back at once, so a probe opens no
connection and leaves nothing on the broker.

Every request carries the link's broker user as its AMQP `user_id`, which RabbitMQ
checks against the connection's user (it refuses a message that names another), so
a callee knows which service called: `rpc(callers=("auth",))` answers only those
broker users (and its own: a deployment where every process shares one user, as in
development, has nothing to tell apart). Which user may send which request at all is the
broker's topic permissions' job (deploy/rabbitmq/broker_users.py); nameko's callers
stamp their user with `ClusterRpcProxy` from here.
"""
import collections
import contextlib
import functools
import itertools
import logging
import socket
import sys
import time
import uuid

import eventlet
import kombu
import kombu.serialization
from amqp import Message
from amqp.exceptions import ConnectionError as AmqpConnectionError
from eventlet.event import Event
from eventlet.greenthread import GreenletExit
from eventlet.semaphore import Semaphore
from kombu import Queue
from kombu.exceptions import OperationalError
from nameko.constants import (
    AMQP_SSL_CONFIG_KEY, AMQP_URI_CONFIG_KEY, DEFAULT_HEARTBEAT, DEFAULT_SERIALIZER, HEARTBEAT_CONFIG_KEY,
    LOGIN_METHOD_CONFIG_KEY, NON_PERSISTENT, SERIALIZER_CONFIG_KEY,
)
from nameko.exceptions import deserialize
from nameko.extensions import DependencyProvider, ProviderCollector, SharedExtension
from nameko.messaging import HeaderEncoder
from nameko.rpc import RPC_QUEUE_TEMPLATE, Responder, Rpc, RpcConsumer, ServiceProxy, get_rpc_exchange
from nameko.standalone import rpc as standalone_rpc

from services.common import clock
from services.common.broker_link import unless_link_broke
from services.common.callers import broker_user, caller_allowed
from services.common.errors import Forbidden, PortalError, ServiceUnavailable
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
# How long the drainer waits on the socket before it runs what other green threads
# asked of it (consuming, cancelling), and how often it sends or checks heartbeats.
DRAIN_INTERVAL = 0.2
HEARTBEAT_CHECK_INTERVAL = 1.0
CLOSE_TIMEOUT = 1.0
READ_CHUNK = 65536
# Waits between reconnection attempts: short at first, a broker restart takes seconds.
RECONNECT_DELAYS = (0.2, 0.5, 1.0, 2.0)
# Replies are read as what requests are sent as (never pickle).
ACCEPTED_CONTENT = {"application/json"}
# Where `RpcLink.answers` sends its message on the RPC exchange: no binding matches it
# (services bind `<service>.*`, nameko's reply queues a uuid), so the broker returns
# it at once.
UNROUTABLE = "amq.portal.round-trip"


class LinkDown(AmqpConnectionError):
    """The process's RPC link is not up, or broke while a call was under way."""


class ServiceAbsent(Exception):
    """The broker returned a request: no queue takes the service's calls."""


class NoAnswerInTime(Exception):
    """The call's deadline passed before its answer came."""


class Subscription:
    """A queue this process serves through its link, consumed again after every
    reconnection; `on_delivery` gets each request as a `Delivery`."""

    def __init__(self, queue, prefetch, on_delivery):
        self.queue = queue
        self.prefetch = prefetch
        self.on_delivery = on_delivery
        self.consumer_tag = None
        self.consuming = Event()


class Delivery:
    """A request as nameko's `Rpc` entrypoint and `Responder` read it, with the
    channel it came on: it can be acknowledged or answered on that channel only."""

    def __init__(self, message, channel):
        self.body = message.body
        self.properties = message.properties
        self.headers = message.properties.get("application_headers") or {}
        self.delivery_info = message.delivery_info
        self.channel = channel


class RpcLink:
    """One process's connection and channel for RPC, shared by every container in it
    that calls or answers over `amqp_uri`; see the module's docstring."""

    _shared = {}

    def __init__(self, amqp_uri, exchange, ssl=None, login_method=None, heartbeat=DEFAULT_HEARTBEAT):
        self.amqp_uri = amqp_uri
        self.user = broker_user(amqp_uri)
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
        self._subscriptions = []
        # What other green threads ask of the drainer, the socket's only reader.
        self._requests = collections.deque()

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
            try:
                self._drainer.wait()  # until it has said goodbye to the broker
            except GreenletExit:
                pass

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
            application_headers=headers, user_id=self.user,
        )
        answered = self._calls[correlation_id] = Event()
        try:
            self._publish_request(message, routing_key)
        except BaseException:
            self.forget(correlation_id)
            raise
        return correlation_id, answered

    def answers(self, timeout):
        """Whether the broker answers on this link within `timeout` seconds: an empty
        message published, mandatory, where no queue can be comes back from it."""
        deadline = time.monotonic() + timeout
        if not self.wait_until_up(timeout):
            return False
        correlation_id = uuid.uuid4().hex
        returned = self._calls[correlation_id] = Event()
        try:
            self._publish_request(Message(b"", delivery_mode=NON_PERSISTENT, correlation_id=correlation_id),
                                  UNROUTABLE)
            returned.wait(max(deadline - time.monotonic(), 0))
        except ServiceAbsent:  # the broker's return
            return True
        except BROKER_ERRORS:
            return False
        finally:
            self.forget(correlation_id)
        return False  # no answer in time

    def forget(self, correlation_id):
        """The caller stopped waiting: a reply that comes later is dropped."""
        self._calls.pop(correlation_id, None)

    def serve(self, subscription):
        """Consume `subscription`'s queue, now and after every reconnection; returns
        once it is consumed (as nameko's consumers, it waits for the broker)."""
        self._subscriptions.append(subscription)
        if self._channel is not None:
            try:
                self._in_drainer(functools.partial(self._consume, subscription))
            except BROKER_ERRORS:
                pass  # consumed when the link is back
        subscription.consuming.wait()

    def stop_serving(self, subscription):
        """No more deliveries from `subscription`'s queue once this returns."""
        if subscription not in self._subscriptions:
            return
        self._subscriptions.remove(subscription)
        if self._channel is not None and subscription.consumer_tag is not None:
            try:
                self._in_drainer(functools.partial(self._channel.basic_cancel, subscription.consumer_tag))
            except BROKER_ERRORS:
                pass  # the channel is gone, and its consumers with it

    def answer(self, delivery, payload, serializer):
        """Reply to `delivery` and acknowledge it, both in one write: through the
        default exchange to a direct reply-to address, else through the RPC
        exchange to a nameko reply queue. Neither if the channel it came on is
        gone: the broker then delivers it again."""
        content_type, content_encoding, data = kombu.serialization.dumps(payload, serializer)
        message = Message(data, content_type=content_type, content_encoding=content_encoding,
                          delivery_mode=NON_PERSISTENT, correlation_id=delivery.properties.get("correlation_id"))
        routing_key = delivery.properties["reply_to"]
        exchange = "" if routing_key.startswith(DIRECT_REPLY_TO) else self.exchange_name
        with self._send_lock:
            channel = self._current(delivery.channel)
            with self._in_one_write():
                channel.basic_publish(message, exchange=exchange, routing_key=routing_key)
                channel.basic_ack(delivery.delivery_info["delivery_tag"])

    def requeue(self, delivery):
        """Give `delivery` back to its queue."""
        with self._send_lock:
            self._current(delivery.channel).basic_reject(delivery.delivery_info["delivery_tag"], requeue=True)

    @contextlib.contextmanager
    def _in_one_write(self):
        """The frames written meanwhile go to the socket in one `send`, which wakes
        the broker once."""
        transport = self._connection.connection.transport
        send, frames = transport._write, []
        # Copied: py-amqp packs every frame into one buffer it reuses.
        transport._write = lambda frame: frames.append(bytes(frame))
        try:
            yield
        finally:
            transport._write = send
        send(b"".join(frames))

    def _current(self, channel):
        if channel is None or channel is not self._channel:
            raise LinkDown("no link to the broker on that channel")
        return channel

    def _publish_request(self, message, routing_key):
        """Publish `message`, mandatory: the broker returns it if no queue takes it."""
        with self._send_lock:
            self._current(self._channel).basic_publish(
                message, exchange=self.exchange_name, routing_key=routing_key, mandatory=True)

    def _in_drainer(self, request):
        done = Event()
        self._requests.append((request, done))
        return done.wait()

    def _run_requests(self):
        while self._requests:
            request, done = self._requests.popleft()
            try:
                done.send(request())
            except Exception as error:  # the asker's to handle; a broken link breaks the next read too
                done.send_exception(error)

    def _consume(self, subscription):
        channel = self._channel
        subscription.queue(channel).declare()
        channel.basic_qos(0, subscription.prefetch, False)
        subscription.consumer_tag = channel.basic_consume(
            subscription.queue.name,
            callback=lambda message: subscription.on_delivery(Delivery(message, channel)))
        if not subscription.consuming.ready():
            subscription.consuming.send()

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
        for subscription in self._subscriptions:
            self._consume(subscription)
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
            self._run_requests()
            if time.monotonic() - checked >= HEARTBEAT_CHECK_INTERVAL:
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
        while self._requests:
            self._requests.popleft()[1].send_exception(LinkDown(reason))
        for subscription in self._subscriptions:
            subscription.consumer_tag = None
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


class HoldsLink:
    """An extension holding the process's `RpcLink` from setup on, let go when its
    container stops (after its workers ended: none of their calls is under way) or dies."""

    link = None

    def stop(self):
        self._release()

    def kill(self):
        self._release()

    def _release(self):
        if self.link is not None:
            self._let_go()
            self.link.release()
            self.link = None

    def _let_go(self):
        """What to undo on the link before letting it go."""


class TimedRpc(HoldsLink, DependencyProvider):
    """A worker's proxy to `target_service`, whose calls time out (see above)."""

    def __init__(self, target_service):
        self.target_service = target_service

    def setup(self):
        self.timeout = float(self.container.config.get("RPC_TIMEOUT", DEFAULT_TIMEOUT))
        self.link = RpcLink.acquire(self.container.config)

    def get_dependency(self, worker_ctx):
        return TimedServiceProxy(self.link, worker_ctx, self.target_service, self.timeout)


class BrokerCheck(HoldsLink, DependencyProvider):
    """A worker's `broker_answers()`: whether the broker answers on the process's link
    (no connection of its own). Workers that ask while it is being found out wait for
    that answer, and a yes is kept for `FRESH_FOR_SECONDS`: a crowd of readiness probes
    costs the broker one round trip. A no is not kept, so the first probe after the
    broker is back sees it. Freshness is measured on `seconds` (the monotonic clock),
    never on the business clock, which tests freeze (`CLOCK_FILE`) for days at a time."""

    FRESH_FOR_SECONDS = 1.0
    TIMEOUT = 2.0
    seconds = staticmethod(time.monotonic)

    def setup(self):
        self.link = RpcLink.acquire(self.container.config)
        self._answered_yes_at = None
        self._finding_out = None  # an Event while a worker asks the broker

    def get_dependency(self, worker_ctx):
        return self.broker_answers

    def broker_answers(self):
        if self._answered_yes_at is not None and self.seconds() - self._answered_yes_at < self.FRESH_FOR_SECONDS:
            return True
        if self._finding_out is not None:
            return self._finding_out.wait()
        finding_out = self._finding_out = Event()
        answer = False  # what the waiting workers get if this one is killed while asking
        try:
            answer = self.link.answers(self.TIMEOUT)
            self._answered_yes_at = self.seconds() if answer else None
        finally:
            self._finding_out = None
            finding_out.send(answer)
        return answer


class LinkResponder(Responder):
    """nameko's responder (its payload, its serialization check), sending through the
    process's `RpcLink` instead of a producer from a pool."""

    def __init__(self, link, serializer, delivery):
        super().__init__(link.amqp_uri, None, serializer, delivery)
        self._link = link

    def publisher_cls(self, *args, **kwargs):
        return self

    def publish(self, payload, serializer, **routing):
        self._link.answer(self.message, payload, serializer)


class LinkRpcConsumer(HoldsLink, SharedExtension, ProviderCollector):
    """Serves a service's RPC queue (`rpc-<service>`, nameko's) through the process's
    `RpcLink`: a delivery goes straight to its entrypoint's worker, and is answered
    and acknowledged on the link's channel."""

    def __init__(self):
        super().__init__()
        self._unregistering = set()
        self._consumer_stopped = Event()
        self._handing_over = 0  # deliveries on their way to a worker

    def setup(self):
        config = self.container.config
        service_name = self.container.service_name
        self.link = RpcLink.acquire(config)
        queue = Queue(RPC_QUEUE_TEMPLATE.format(service_name), exchange=get_rpc_exchange(config),
                      routing_key=f"{service_name}.*", durable=True)
        self._subscription = Subscription(queue, self.container.max_workers, self._on_delivery)

    def start(self):
        self.link.serve(self._subscription)

    def unregister_provider(self, provider):
        """As nameko's: every entrypoint waits until the last one asked, so that a
        request still delivered meanwhile finds its method; then no more deliveries,
        and those already here reach their workers before the container waits on them."""
        self._unregistering.add(provider)
        if not self._providers - self._unregistering:
            self.link.stop_serving(self._subscription)
            while self._handing_over:
                eventlet.sleep(0.01)
            self._consumer_stopped.send()
        self._consumer_stopped.wait()
        super().unregister_provider(provider)

    def _let_go(self):
        self.link.stop_serving(self._subscription)

    def _on_delivery(self, delivery):
        # In the drainer: hand over at once, a full worker pool must not stop the link.
        self._handing_over += 1
        eventlet.spawn_n(self._hand_over, delivery)

    def _hand_over(self, delivery):
        try:
            body = kombu.serialization.loads(
                delivery.body, delivery.properties.get("content_type"), delivery.properties.get("content_encoding"),
                accept=ACCEPTED_CONTENT)
            self._provider_for(delivery.delivery_info["routing_key"]).handle_message(body, delivery)
        except Exception:  # answered as nameko's consumer answers it: the error to the caller
            unless_link_broke(self.handle_result)(delivery, None, sys.exc_info())
        finally:
            self._handing_over -= 1

    _provider_for = RpcConsumer.get_provider_for_method

    def handle_result(self, delivery, result, exc_info):
        serializer = self.container.config.get(SERIALIZER_CONFIG_KEY, DEFAULT_SERIALIZER)
        # Answered and acknowledged together (`RpcLink.answer`).
        return LinkResponder(self.link, serializer, delivery).send_response(result, exc_info)

    def requeue_message(self, delivery):
        unless_link_broke(self.link.requeue)(delivery)


class PortalRpc(Rpc):
    # One consumer serves a service's whole queue: every RPC entrypoint of a service
    # must be this one, or two consumers would share `rpc-<service>`.
    rpc_consumer = LinkRpcConsumer()

    def __init__(self, callers=None, **kwargs):
        """`callers`: the broker users this entrypoint answers (None: any)."""
        self.callers = None if callers is None else frozenset(callers)
        super().__init__(**kwargs)

    def handle_message(self, body, message):
        caller = message.properties.get("user_id")
        if not caller_allowed(caller, self.callers, self.rpc_consumer.link.user):
            raise Forbidden(f"{self.method_name} is not for this caller.", fields={"caller": caller})
        return super().handle_message(body, message)


rpc = PortalRpc.decorator


class ClusterRpcProxy(standalone_rpc.ClusterRpcProxy):
    """nameko's standalone caller (portalctl's, the tests'), stamping each request
    with its broker user as `user_id` so that callees know who called."""

    def __init__(self, config, *args, **kwargs):
        super().__init__(config, *args, **kwargs)
        self._proxy = StampedClusterProxy(self._worker_ctx, self._reply_listener, broker_user(config[AMQP_URI_CONFIG_KEY]))


class StampedClusterProxy(standalone_rpc.ClusterProxy):
    def __init__(self, worker_ctx, reply_listener, user):
        self._user = user
        super().__init__(worker_ctx, reply_listener)

    def __getattr__(self, name):
        if name not in self._proxies:
            self._proxies[name] = ServiceProxy(self._worker_ctx, name, self._reply_listener, user_id=self._user)
        return self._proxies[name]


class Pingable:
    """Mixin: every service answers `ping`, which `/status` uses to see it alive.

    A module that imports this mixin holds a class with an entrypoint, so start a
    service by naming its class: `nameko run services.auth.service:AuthService`.
    """

    @rpc
    def ping(self):
        return {"service": self.name, "time": clock.now().isoformat()}
