"""RPC between services, always with a deadline.

nameko's in-service `RpcProxy` waits for an answer forever. `TimedRpc` gives workers a
proxy whose calls raise `ServiceUnavailable` after `RPC_TIMEOUT` seconds (or a
per-call timeout), and whose request messages expire on the broker at the same
moment, so a service that comes back late does not act on a request nobody awaits.

Since a request is void once its deadline passes, neither it nor its reply is written
to the broker's disk (stock nameko makes both persistent, and a persistent message is
confirmed only after the broker's fsync): a request or reply lost with a broker is a
call that times out, which the caller answers as 503 and retries, exactly as it would
if the broker had kept it. Requests are still confirmed, because the confirm is how a
call to a service that is not running fails at once (`UnknownService`) instead of at
its deadline; replies, which nobody could act on if the broker refused them, are not.
Every service's entrypoints use this module's `rpc`, so auth's answers, which carry
session tokens and new API keys, never reach a disk either.
"""
import logging
import time

import eventlet
from amqp.exceptions import ConnectionError as AmqpConnectionError
from kombu.exceptions import OperationalError
from nameko.amqp.publish import Publisher
from nameko.constants import (
    AMQP_SSL_CONFIG_KEY, AMQP_URI_CONFIG_KEY, DEFAULT_SERIALIZER, LOGIN_METHOD_CONFIG_KEY,
    NON_PERSISTENT, SERIALIZER_CONFIG_KEY,
)
from nameko.exceptions import UnknownService
from nameko.rpc import Responder, Rpc, RpcConsumer, RpcProxy, get_rpc_exchange

from services.common import clock
from services.common.errors import PortalError, ServiceUnavailable
from services.common.logs import WithoutRpcReplyBodies
from services.common.observability import RPC_CLIENT_SECONDS

DEFAULT_TIMEOUT = 5.0
# What publishing raises when the broker is away or the connection broke.
BROKER_ERRORS = (OSError, OperationalError, AmqpConnectionError)
# Replies may carry secrets (a new session's token); nameko would log them whole at DEBUG.
logging.getLogger("nameko.rpc").addFilter(WithoutRpcReplyBodies())


class PendingCall:
    """An RPC under way; `result()` waits at most until its deadline."""

    def __init__(self, service_name, method_name, reply, timeout):
        self.service_name = service_name
        self.method_name = method_name
        self._reply = reply
        self._timeout = timeout

    def result(self):
        started = time.perf_counter()
        outcome = "error"
        try:
            with eventlet.Timeout(self._timeout):
                answer = self._reply.result()
            outcome = "ok"
            return answer
        except eventlet.Timeout:
            outcome = "timeout"
            raise ServiceUnavailable(
                f"{self.service_name} did not answer in time.",
                fields={"service": self.service_name},
            ) from None
        except PortalError:
            outcome = "refused"
            raise
        finally:
            RPC_CLIENT_SECONDS.labels(self.service_name, self.method_name, outcome).observe(
                time.perf_counter() - started)


class TimedMethod:
    def __init__(self, service_proxy, service_name, method_name, timeout):
        self._service_proxy = service_proxy
        self._service_name = service_name
        self._method_name = method_name
        self._timeout = timeout

    def call_async(self, *args, **kwargs):
        method = getattr(self._service_proxy, self._method_name)
        # Expire the request on the broker when the caller stops waiting.
        method.publisher.expiration = self._timeout
        # One deadline for sending and answering: while the broker is away, nameko's
        # publisher retries its connection for longer than any caller should wait.
        started = time.monotonic()
        try:
            with eventlet.Timeout(self._timeout):
                reply = method.call_async(*args, **kwargs)
        except UnknownService:
            raise ServiceUnavailable(
                f"{self._service_name} is not running.",
                fields={"service": self._service_name},
            ) from None
        except (eventlet.Timeout, *BROKER_ERRORS):
            RPC_CLIENT_SECONDS.labels(self._service_name, self._method_name, "unsent").observe(
                time.monotonic() - started)
            raise ServiceUnavailable(
                f"{self._service_name} cannot be reached now.",
                fields={"service": self._service_name},
            ) from None
        waited = time.monotonic() - started
        return PendingCall(self._service_name, self._method_name, reply, max(self._timeout - waited, 0))

    def __call__(self, *args, **kwargs):
        return self.call_async(*args, **kwargs).result()


class TimedServiceProxy:
    def __init__(self, service_proxy, service_name, timeout):
        self._service_proxy = service_proxy
        self._service_name = service_name
        self._timeout = timeout

    def __getattr__(self, method_name):
        return TimedMethod(self._service_proxy, self._service_name, method_name, self._timeout)

    def with_timeout(self, timeout):
        return TimedServiceProxy(self._service_proxy, self._service_name, timeout)


class ReplyPublisher(Publisher):
    delivery_mode = NON_PERSISTENT
    use_confirms = False


class ReplyResponder(Responder):
    publisher_cls = ReplyPublisher


class ReplyConsumer(RpcConsumer):
    """nameko's RPC consumer, answering with `ReplyPublisher`."""

    def handle_result(self, message, result, exc_info):
        config = self.container.config
        responder = ReplyResponder(
            config[AMQP_URI_CONFIG_KEY], get_rpc_exchange(config),
            config.get(SERIALIZER_CONFIG_KEY, DEFAULT_SERIALIZER), message,
            ssl=config.get(AMQP_SSL_CONFIG_KEY), login_method=config.get(LOGIN_METHOD_CONFIG_KEY),
        )
        result, exc_info = responder.send_response(result, exc_info)
        self.queue_consumer.ack_message(message)
        return result, exc_info


class PortalRpc(Rpc):
    # One consumer serves a service's whole queue: every RPC entrypoint of a service
    # must be this one, or two consumers would share `rpc-<service>`.
    rpc_consumer = ReplyConsumer()


rpc = PortalRpc.decorator


class TimedRpc(RpcProxy):
    """`RpcProxy` whose calls time out, sent non-persistent (see above); extra options
    go to nameko's publisher."""

    def __init__(self, target_service, **options):
        options.setdefault("delivery_mode", NON_PERSISTENT)
        super().__init__(target_service, **options)

    def get_dependency(self, worker_ctx):
        timeout = float(self.container.config.get("RPC_TIMEOUT", DEFAULT_TIMEOUT))
        proxy = super().get_dependency(worker_ctx)
        return TimedServiceProxy(proxy, self.target_service, timeout)


class Pingable:
    """Mixin: every service answers `ping`, which `/status` uses to see it alive.

    A module that imports this mixin holds a class with an entrypoint, so start a
    service by naming its class: `nameko run services.auth.service:AuthService`.
    """

    @rpc
    def ping(self):
        return {"service": self.name, "time": clock.now().isoformat()}
