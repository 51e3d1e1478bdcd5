"""nameko extensions auth needs: replies that never reach the broker's disk, and work
done after the answer."""
from functools import partial

from nameko.amqp.publish import Publisher
from nameko.constants import (
    AMQP_SSL_CONFIG_KEY, AMQP_URI_CONFIG_KEY, DEFAULT_SERIALIZER, LOGIN_METHOD_CONFIG_KEY,
    NON_PERSISTENT, SERIALIZER_CONFIG_KEY,
)
from nameko.extensions import DependencyProvider
from nameko.rpc import Responder, Rpc, RpcConsumer, get_rpc_exchange


class TransientPublisher(Publisher):
    delivery_mode = NON_PERSISTENT


class TransientResponder(Responder):
    publisher_cls = TransientPublisher


class TransientReplyConsumer(RpcConsumer):
    """nameko's RPC consumer, replying in non-persistent messages: auth's answers carry
    session tokens and new API keys, and nameko's reply queues are durable."""

    def handle_result(self, message, result, exc_info):
        config = self.container.config
        responder = TransientResponder(
            config[AMQP_URI_CONFIG_KEY], get_rpc_exchange(config),
            config.get(SERIALIZER_CONFIG_KEY, DEFAULT_SERIALIZER), message,
            ssl=config.get(AMQP_SSL_CONFIG_KEY), login_method=config.get(LOGIN_METHOD_CONFIG_KEY),
        )
        result, exc_info = responder.send_response(result, exc_info)
        self.queue_consumer.ack_message(message)
        return result, exc_info


class TransientRpc(Rpc):
    # One consumer serves a service's whole queue: every entrypoint of the service
    # must use this class, or two consumers would share `rpc-<service>`.
    rpc_consumer = TransientReplyConsumer()


transient_rpc = TransientRpc.decorator


class Background(DependencyProvider):
    """`self.background(fn, *args)` runs `fn` in a greenthread the container manages, so
    the caller's answer does not wait for it. `fn` must catch its own errors (an uncaught
    one stops the container) and bound its own waits; stopping the service lets what is
    still running finish."""

    def setup(self):
        self.running = set()

    def get_dependency(self, worker_ctx):
        return self.spawn

    def spawn(self, fn, *args):
        thread = self.container.spawn_managed_thread(partial(fn, *args))
        self.running.add(thread)
        thread.link(self.running.discard)

    def stop(self):
        for thread in list(self.running):
            thread.wait()
