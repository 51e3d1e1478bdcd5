"""Malformed messages on one of the project's own queues (subscriptions' handler of
billing's `order_paid`) end in the dead-letter queue within the delivery limit, and
the good message after them is processed: the renewal it pays is settled."""
import time
import uuid
from datetime import timedelta

from kombu import Connection

from services.common.events import DEAD_LETTER_QUEUE
from services.common.outbox import event_exchange
from support.publishing import publish_confirmed
from support.subscriptions_testkit import NOW, identity
from support.waiting import wait_until

DAY = timedelta(days=1)
QUEUE = "evt-billing-order_paid--subscriptions.on_order_paid"


def publish_raw(amqp_uri, body):
    """`body` as it is, labelled JSON, where billing publishes its `order_paid`."""
    publish_confirmed(amqp_uri, event_exchange("billing"), body, routing_key="order_paid",
                      content_type="application/json", content_encoding="utf-8")


def dead_letters(amqp_uri, expected, timeout=30):
    """The messages in portal.dead-letters, once `expected` of them are (or the time is up)."""
    found = []
    deadline = time.monotonic() + timeout
    with Connection(amqp_uri) as connection:
        queue = DEAD_LETTER_QUEUE(connection.channel())
        while len(found) < expected and time.monotonic() < deadline:
            while (message := queue.get(no_ack=True)) is not None:
                found.append(message)
            time.sleep(0.2)
    return found


def test_a_poison_order_paid_is_dead_lettered_and_the_next_one_settles_its_renewal(
        rpc, subscribe, ledger, set_clock, billing_event, rabbit_config):
    # Its monthly cycle ends at NOW; its boleto is issued three days before.
    subscription = subscribe("acme-basico", started=timedelta(days=28), payment={"method": "boleto"})
    set_clock(NOW - 3 * DAY)
    assert rpc.run_renewals() == {"waiting": 1}
    [charge] = ledger.requests

    # An envelope whose data is not an object (the handler fails on every delivery),
    # and a body that is not even JSON.
    poison_id = str(uuid.uuid4())
    failing = f'{{"event_id": "{poison_id}", "type": "order_paid", "data": "PED-X"}}'
    garbage = f"not json {{{poison_id}"
    publish_raw(rabbit_config["AMQP_URI"], failing)
    publish_raw(rabbit_config["AMQP_URI"], garbage)
    billing_event("order_paid", ledger.orders[charge["idempotency_key"]])

    owner = identity()
    wait_until(lambda: rpc.get_subscription(owner, subscription["id"])["cycle"]["number"] == 2)
    dead = dead_letters(rabbit_config["AMQP_URI"], expected=2)
    # Given up on in that very queue (so `portalctl events dead-letters --send-back` can
    # return it there): the failing one when the broker's delivery limit was reached,
    # the undecodable one at once. Not looping, not lost.
    assert {message.body: (message.headers["x-first-death-queue"], message.headers["x-first-death-reason"])
            for message in dead} == {failing: (QUEUE, "delivery_limit"), garbage: (QUEUE, "rejected")}
