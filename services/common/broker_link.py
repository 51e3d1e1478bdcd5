"""What nameko 2.14 needs to outlive a broker outage: survive a restart without
restarting the process, and stop when told to while the broker is away.

When the broker goes away, kombu reconnects the process's consumer by itself. But a
message that arrived on the old connection may still be answered or acknowledged
afterwards, on the broken socket: nameko ignores the AMQP library's own connection
errors there, not the socket's (`ConnectionResetError`, `BrokenPipeError`) nor
kombu's (`OperationalError`, once its publish retries are spent), and one of those in
a worker or a consumer thread kills the container, and with it the process.

Nothing is lost by not answering: a message not acknowledged on a connection that
broke goes back to its queue and is delivered again (requests are idempotent, events
deduplicated by `event_id`), or, for an RPC request whose caller gave up, expires.

Stopping is the other gap. nameko's QueueConsumer (every consumer of a process shares
it, RPC replies included) cancels a consumer only from inside its consumer thread's
loop, and waits for that thread to end; while the broker is away the thread is in
kombu's reconnection loop instead, retrying forever, so a SIGTERM would wait for the
broker to come back. Without a link there is nothing to cancel and nothing to settle
(the broker took back every unacknowledged message when the link broke), so the
consumer lets go at once and its thread is ended where it waits.
"""
import logging
from contextlib import contextmanager

from amqp.exceptions import ConnectionError as AmqpConnectionError
from greenlet import GreenletExit
from kombu.exceptions import OperationalError
from nameko.extensions import ProviderCollector
from nameko.messaging import QueueConsumer

log = logging.getLogger(__name__)

# What answering or acknowledging raises when the broker connection broke.
BROKER_LINK_ERRORS = (OSError, OperationalError, AmqpConnectionError)


def unless_link_broke(settle):
    """`settle(*args)`, or a warning instead of a dead container if the link broke."""

    def settled(*args, **kwargs):
        try:
            return settle(*args, **kwargs)
        except BROKER_LINK_ERRORS as error:
            log.warning("the broker connection broke before %s (%s); the broker delivers the message again",
                        getattr(settle, "__name__", "answering"), error)
            return None

    settled.tolerates_broken_link = True
    return settled


def tolerate_broken_links():
    """Make nameko's acknowledgements survive a broken link (once per process)."""
    for name in ("ack_message", "requeue_message"):
        method = getattr(QueueConsumer, name)
        if not getattr(method, "tolerates_broken_link", False):
            setattr(QueueConsumer, name, unless_link_broke(method))


def stop_without_broker():
    """Make nameko's QueueConsumer stop, and die, without waiting for an absent
    broker (once per process)."""
    if getattr(QueueConsumer, "stops_without_broker", False):
        return
    QueueConsumer.stops_without_broker = True
    # True from a (re)connection until that connection's consumers are torn down.
    QueueConsumer.linked = False
    QueueConsumer.on_connection_revived = _on_linked
    QueueConsumer.Consumer = _unlinked_on_exit(QueueConsumer.Consumer)
    QueueConsumer.unregister_provider = _unregister_at_once_when_unlinked(QueueConsumer.unregister_provider)
    QueueConsumer.stop = _stop_without_waiting_for_broker(QueueConsumer.stop)
    QueueConsumer.kill = _kill_reconnecting_thread_first(QueueConsumer.kill)


def _on_linked(queue_consumer):
    queue_consumer.linked = True


def _unlinked_on_exit(consumer_context):
    @contextmanager
    def linked_consumer(queue_consumer):
        try:
            with consumer_context(queue_consumer) as consuming:
                yield consuming
        finally:
            queue_consumer.linked = False
            # Cancellations the loop took no more: no consumer is left to cancel.
            pending, queue_consumer._pending_remove_providers = queue_consumer._pending_remove_providers, {}
            for provider, removed in pending.items():
                queue_consumer._consumers.pop(provider, None)
                removed.send()

    return linked_consumer


def _unregister_at_once_when_unlinked(cancel_then_unregister):
    def unregister_provider(queue_consumer, provider):
        if queue_consumer._consumers_ready.ready() and not queue_consumer.linked:
            queue_consumer._consumers.pop(provider, None)
            ProviderCollector.unregister_provider(queue_consumer, provider)
        else:
            cancel_then_unregister(queue_consumer, provider)

    return unregister_provider


def _stop_without_waiting_for_broker(stop_while_starting):
    def stop(queue_consumer):
        if not queue_consumer._consumers_ready.ready():
            return stop_while_starting(queue_consumer)  # nameko's own: it ends the thread
        queue_consumer.wait_for_providers()
        # Ends the loop at its next turn, and keeps a link that breaks now from reconnecting.
        queue_consumer.should_stop = True
        if not queue_consumer.linked:
            _end_reconnection(queue_consumer)
        _wait_for_consumer_thread(queue_consumer)

    return stop


def _kill_reconnecting_thread_first(kill):
    def kill_consumer(queue_consumer):
        if queue_consumer._consumers_ready.ready() and not queue_consumer.linked:
            _end_reconnection(queue_consumer)
        kill(queue_consumer)

    return kill_consumer


def _end_reconnection(queue_consumer):
    thread = queue_consumer._gt
    if thread is not None and not thread.dead:
        # GreenletExit where it waits: kombu's `with` blocks close the connection it was opening.
        thread.kill()
        _wait_for_consumer_thread(queue_consumer)


def _wait_for_consumer_thread(queue_consumer):
    try:
        queue_consumer._gt.wait()
    except GreenletExit:
        pass
