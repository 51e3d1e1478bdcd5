"""What nameko 2.14 needs to outlive a broker restart without restarting the process.

When the broker goes away, kombu reconnects the process's consumer by itself. But a
message that arrived on the old connection may still be answered or acknowledged
afterwards, on the broken socket: nameko ignores the AMQP library's own connection
errors there, not the socket's (`ConnectionResetError`, `BrokenPipeError`) nor
kombu's (`OperationalError`, once its publish retries are spent), and one of those in
a worker or a consumer thread kills the container, and with it the process.

Nothing is lost by not answering: a message not acknowledged on a connection that
broke goes back to its queue and is delivered again (requests are idempotent, events
deduplicated by `event_id`), or, for an RPC request whose caller gave up, expires.
"""
import logging

from amqp.exceptions import ConnectionError as AmqpConnectionError
from kombu.exceptions import OperationalError
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
