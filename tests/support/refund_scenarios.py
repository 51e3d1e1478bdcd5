"""What every processor's refunds must show in a running billing (issue 21's
acceptance), given how to make a paid order at the processor and how its bank settles
a refund there: a full refund, two partial ones adding to the total and a third
refused, one that fails, each confirmed later by the processor's webhook, and a
repeated request refunding once."""
import uuid

import pytest

from services.billing import domain
from services.common.errors import Conflict
from support.waiting import wait_until


def ask(billing, order, amount_cents=None, key=None):
    return billing.rpc.request_refund({
        "merchant_id": order["merchant"]["id"], "code": order["code"], "request_key": key or str(uuid.uuid4()),
        "amount_cents": amount_cents, "reason": "Desistência", "actor": "merchant",
    })


def settled(billing, order, refund, status):
    """Wait until billing has `refund` in `status` (the webhook arrives in its own time)."""
    def now():
        return {item["id"]: item["status"] for item in billing.rpc.list_refunds(order["merchant"]["id"], order["code"])}
    wait_until(lambda: now()[refund["id"]] == status, message=lambda: f"{refund['id']} {status}; it is {now()}")


def order_status(billing, order):
    return billing.rpc.orders_by_keys([order["idempotency_key"]])[order["idempotency_key"]]["status"]


def refunds_settle_as_the_processor_confirms(billing, events, paid_order, bank, refunds_at_processor):
    """`paid_order()` → a new paid order; `bank(order, refund_key, approve)` settles the
    refund at the processor, which tells billing by its webhook;
    `refunds_at_processor(order)` → how many refunds the processor has of the order."""
    whole = paid_order()
    full = ask(billing, whole)
    assert (full["status"], full["amount_cents"]) == ("pending", whole["amount_cents"])
    assert order_status(billing, whole) == "paid"
    bank(whole, domain.refund_key(full["id"]), True)
    settled(billing, whole, full, "done")
    assert order_status(billing, whole) == "refunded"

    parted = paid_order()
    first = ask(billing, parted, 1000)
    rest = ask(billing, parted)
    assert rest["amount_cents"] == parted["amount_cents"] - 1000
    with pytest.raises(Conflict):
        ask(billing, parted, 1)
    bank(parted, domain.refund_key(first["id"]), True)
    settled(billing, parted, first, "done")
    assert order_status(billing, parted) == "partially_refunded"
    bank(parted, domain.refund_key(rest["id"]), True)
    settled(billing, parted, rest, "done")
    assert order_status(billing, parted) == "refunded"

    kept = paid_order()
    refused = ask(billing, kept)
    bank(kept, domain.refund_key(refused["id"]), False)
    # A processor that does not call back on a failure is asked by the reconciler.
    billing.rpc.reconcile()
    settled(billing, kept, refused, "failed")
    assert order_status(billing, kept) == "paid"

    twice = paid_order()
    key = f"rf-{uuid.uuid4()}"
    assert ask(billing, twice, 500, key) == ask(billing, twice, 500, key)
    assert refunds_at_processor(twice) == 1

    types = sorted(envelope["type"] for envelope in billing.received(events, 4))
    assert types == ["order_refunded", "order_refunded", "order_refunded", "refund_failed"]
