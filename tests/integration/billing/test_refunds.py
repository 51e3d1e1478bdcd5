"""Refunds through billing on a real broker and database, with the sandbox processor:
full and partial, never more than was paid, confirmed later (by the reconciler or a
callback) before the order changes, failures said, one refund per request key."""
import uuid
from datetime import datetime, timedelta, timezone
from queue import Empty

import pytest

from services.billing import domain
from services.billing.models import Refund, sandbox
from services.common import clock
from services.billing.processors import ProcessorUnavailable
from services.common.errors import Conflict, NotFound, ValidationFailed
from support.billing_requests import charge_request, post_callback, signed
from support.notifications import envelope, publish
from support.waiting import wait_until

APPROVE, REFUND_FAILS = "4242424242424242", "4000000000005126"
REFUND_EVENTS = ("order_refunded", "refund_failed")


def paid_order(billing, number=APPROVE, amount_cents=4990):
    order = billing.rpc.charge(charge_request(billing.add_card(number), amount_cents=amount_cents))
    assert order["status"] == "paid"
    return order


def refund(billing, order, amount_cents=None, key=None, merchant_id="acme-cursos", reason="Pedido do cliente"):
    return billing.rpc.request_refund({
        "merchant_id": merchant_id, "code": order["code"], "request_key": key or str(uuid.uuid4()),
        "amount_cents": amount_cents, "reason": reason, "actor": "merchant",
    })


def order_status(billing, order):
    return billing.rpc.get_order({"email": "ana@example.com", "merchant_id": None, "session_id": "t"},
                                 order["code"])["status"]


def no_more(queue):
    with pytest.raises(Empty):
        queue.get(timeout=1)


def test_a_full_refund_waits_for_the_processor_before_the_order_is_refunded(billing, event_queue):
    events = event_queue("billing", *REFUND_EVENTS)
    order = paid_order(billing)

    asked = refund(billing, order)

    assert (asked["status"], asked["amount_cents"], asked["order_code"]) == ("pending", 4990, order["code"])
    assert (asked["actor"], asked["reason"]) == ("merchant", "Pedido do cliente")
    assert order_status(billing, order) == "paid"
    no_more(events)
    assert billing.rpc.reconcile() == {"checked": 1, "settled": 1}
    assert order_status(billing, order) == "refunded"
    [done] = billing.rpc.list_refunds("acme-cursos", order["code"])
    assert (done["id"], done["status"], done["settled_at"] is not None) == (asked["id"], "done", True)
    [event] = billing.received(events, 1)
    assert (event["type"], event["merchant_id"]) == ("order_refunded", "acme-cursos")
    assert event["data"] == {
        "refund_id": asked["id"], "order_id": event["data"]["order_id"], "code": order["code"],
        "email": "ana@example.com", "subscription_id": order["subscription_id"], "method": "credit_card",
        "amount_cents": 4990, "order_amount_cents": 4990, "refunded_cents": 4990, "order_status": "refunded",
        "status": "done", "reason": "Pedido do cliente", "actor": "merchant", "failure_reason": None,
    }
    assert billing.rpc.reconcile() == {"checked": 0, "settled": 0}
    no_more(events)


def test_partial_refunds_add_up_to_what_was_paid_at_most(billing, event_queue):
    events = event_queue("billing", *REFUND_EVENTS)
    order = paid_order(billing)
    first, second = refund(billing, order, 2000), refund(billing, order, 2000)

    # Pending refunds count: 990 is what is left.
    with pytest.raises(ValidationFailed) as exceeding:
        refund(billing, order, 1000)
    assert exceeding.value.code == "exceeds_paid" and "990" in exceeding.value.fields["amount_cents"][0]

    assert billing.rpc.reconcile() == {"checked": 2, "settled": 2}
    assert order_status(billing, order) == "partially_refunded"
    totals = [event["data"]["refunded_cents"] for event in billing.received(events, 2)]
    assert sorted(totals) == [2000, 4000]
    rest = refund(billing, order)
    assert rest["amount_cents"] == 990
    billing.rpc.reconcile()
    assert order_status(billing, order) == "refunded"
    with pytest.raises(Conflict) as nothing_left:
        refund(billing, order, 1)
    assert nothing_left.value.code == "not_refundable"
    assert [item["id"] for item in billing.rpc.list_refunds("acme-cursos", order["code"])] == [
        first["id"], second["id"], rest["id"]]


def test_a_refund_the_processor_fails_is_said_and_gives_nothing_back(billing, event_queue):
    events = event_queue("billing", *REFUND_EVENTS)
    order = paid_order(billing, REFUND_FAILS)

    asked = refund(billing, order)
    billing.rpc.reconcile()

    [failed] = billing.rpc.list_refunds("acme-cursos", order["code"])
    assert (failed["id"], failed["status"], failed["failure_reason"]) == (asked["id"], "failed", "refund_declined")
    assert order_status(billing, order) == "paid"
    [event] = billing.received(events, 1)
    assert event["type"] == "refund_failed"
    assert (event["data"]["order_status"], event["data"]["refunded_cents"]) == ("paid", 0)
    # A failed refund does not count against what may still be refunded.
    assert refund(billing, order)["amount_cents"] == 4990
    assert [item["id"] for item in billing.rpc.list_failed_refunds()] == [asked["id"]]


def test_a_processors_callback_confirms_a_pending_refund(billing, event_queue):
    events = event_queue("billing", *REFUND_EVENTS)
    order = paid_order(billing)
    asked = refund(billing, order, 1000)

    answer = post_callback(billing, *signed(billing.config["PROCESSOR_WEBHOOK_SECRET"],
                                            {"idempotency_key": order["idempotency_key"]}))

    assert answer.status_code == 200
    assert order_status(billing, order) == "partially_refunded"
    assert billing.rpc.list_refunds("acme-cursos", order["code"])[0]["status"] == "done"
    assert [event["data"]["refund_id"] for event in billing.received(events, 1)] == [asked["id"]]
    assert billing.rpc.reconcile() == {"checked": 0, "settled": 0}


def test_one_request_key_is_one_refund_however_often_it_is_sent(billing, count_rows):
    order = paid_order(billing)
    key = f"rf-{uuid.uuid4()}"

    request = {"merchant_id": "acme-cursos", "code": order["code"], "request_key": key, "amount_cents": 1500,
               "reason": None, "actor": "merchant"}
    answers = [call.result() for call in [billing.rpc.request_refund.call_async(request) for _ in range(10)]]

    assert len({answer["id"] for answer in answers}) == 1
    assert count_rows(Refund.__table__, request_key=key) == 1
    assert count_rows(sandbox.refunds, charge_key=order["idempotency_key"]) == 1
    assert refund(billing, order, None, key)["id"] == answers[0]["id"]
    with pytest.raises(ValidationFailed) as reused:
        refund(billing, order, 1000, key)
    assert reused.value.code == "idempotency_key_reused"
    with pytest.raises(ValidationFailed):
        refund(billing, paid_order(billing), 1500, key)


def test_another_merchants_order_is_not_found(billing, count_rows):
    order = paid_order(billing)
    with pytest.raises(NotFound):
        refund(billing, order, merchant_id="beta-software")
    with pytest.raises(NotFound):
        billing.rpc.list_refunds("beta-software", order["code"])
    assert count_rows(Refund.__table__) == 0


def test_an_order_not_paid_cannot_be_refunded(billing, count_rows):
    pending = billing.rpc.charge(charge_request(None, method="pix", kind="renewal"))
    with pytest.raises(Conflict) as refused:
        refund(billing, pending)
    assert refused.value.code == "not_refundable"
    assert count_rows(Refund.__table__) == 0


def test_a_paid_boleto_and_a_checkouts_order_are_left_to_the_merchant(billing):
    boleto = billing.rpc.charge(charge_request(None, method="boleto", kind="renewal"))
    billing.processor.pay(boleto["idempotency_key"])
    billing.rpc.reconcile()
    post_callback(billing, *signed(billing.config["PROCESSOR_WEBHOOK_SECRET"],
                                   {"idempotency_key": boleto["idempotency_key"]}))
    assert refund(billing, boleto)["status"] == "pending_manual"
    intake = billing.rpc.record_order({
        "merchant_id": "acme-cursos", "external_id": f"ext-{uuid.uuid4()}", "product_name": "Curso",
        "buyer": {"email": "ana@example.com", "name": "Ana"}, "amount_cents": 1000, "status": "paid",
        "payment": {"method": "pix", "pix_code": "000201"},
    })
    assert refund(billing, intake)["status"] == "pending_manual"
    assert billing.rpc.reconcile() == {"checked": 0, "settled": 0}


def test_the_merchant_confirms_a_refund_left_to_it_and_only_such_a_one(billing, event_queue):
    events = event_queue("billing", *REFUND_EVENTS)
    intake = billing.rpc.record_order({
        "merchant_id": "acme-cursos", "external_id": f"ext-{uuid.uuid4()}", "product_name": "Curso",
        "buyer": {"email": "ana@example.com", "name": "Ana"}, "amount_cents": 1000, "status": "paid",
        "payment": {"method": "pix", "pix_code": "000201"},
    })
    manual = refund(billing, intake, amount_cents=400)
    assert manual["status"] == "pending_manual"
    for merchant_id, code, refund_id in (("beta-software", intake["code"], manual["id"]),
                                         ("acme-cursos", intake["code"], str(uuid.uuid4())),
                                         ("acme-cursos", intake["code"], "x" * 1000)):
        with pytest.raises(NotFound):
            billing.rpc.confirm_manual_refund(merchant_id, code, refund_id)
    no_more(events)

    done = billing.rpc.confirm_manual_refund("acme-cursos", intake["code"].lower(), manual["id"])

    assert (done["id"], done["status"], done["settled_at"] is not None) == (manual["id"], "done", True)
    assert order_status(billing, intake) == "partially_refunded"
    [event] = billing.received(events, 1)
    assert (event["type"], event["data"]["refunded_cents"], event["data"]["order_status"]) == (
        "order_refunded", 400, "partially_refunded")
    assert billing.rpc.confirm_manual_refund("acme-cursos", intake["code"], manual["id"])["status"] == "done"
    no_more(events)

    # A refund its processor settles is not the merchant's to confirm.
    pending = refund(billing, paid_order(billing))
    with pytest.raises(Conflict) as refused:
        billing.rpc.confirm_manual_refund("acme-cursos", pending["order_code"], pending["id"])
    assert (refused.value.code, list(refused.value.fields)) == ("not_manual", ["refund_id"])


def test_a_lost_answer_is_asked_again_under_the_same_key(billing, monkeypatch, tmp_path, count_rows):
    order = paid_order(billing)
    real_refund = type(billing.processor).refund
    calls = []

    def never_arrives(processor, key, refund_key, amount_cents):
        calls.append(refund_key)
        if len(calls) == 1:
            raise ProcessorUnavailable("sandbox: connection reset before the refund was made")
        return real_refund(processor, key, refund_key, amount_cents)

    monkeypatch.setattr(type(billing.processor), "refund", never_arrives)
    asked = refund(billing, order)
    assert asked["status"] == "pending" and count_rows(sandbox.refunds) == 0
    assert billing.rpc.reconcile() == {"checked": 1, "settled": 0}
    clock_file = tmp_path / "clock.json"
    monkeypatch.setenv("CLOCK_FILE", str(clock_file))
    clock.write_clock_file(clock_file, frozen_at=datetime.now(timezone.utc) + domain.RESUBMIT_AFTER
                           + timedelta(seconds=5))
    billing.rpc.reconcile()
    assert calls == [domain.refund_key(asked["id"])] * 2
    assert count_rows(sandbox.refunds) == 1
    billing.rpc.reconcile()
    assert order_status(billing, order) == "refunded"


def test_a_payment_not_applied_is_refunded_automatically_once(billing, event_queue, count_rows):
    """subscriptions' `subscription_payment_not_applied` (sent twice, as at-least-once
    delivery may): one refund, by the system, then order_refunded once confirmed, which
    e-mails the buyer and goes to the merchant's webhooks."""
    events = event_queue("billing", *REFUND_EVENTS)
    order = paid_order(billing)
    not_applied = envelope("subscription_payment_not_applied", merchant_id="acme-cursos", subscription_id=str(
        uuid.uuid4()), email="ana@example.com", actor="system", order_code=order["code"], amount_cents=4990,
        kind="renewal")

    publish(billing.config["AMQP_URI"], "subscriptions", not_applied, {**not_applied, "event_id": str(uuid.uuid4())})

    wait_until(lambda: billing.rpc.list_refunds("acme-cursos", order["code"]), message="the refund")
    [asked] = billing.rpc.list_refunds("acme-cursos", order["code"])
    assert (asked["actor"], asked["amount_cents"], asked["status"]) == ("system", 4990, "pending")
    assert asked["reason"] == "Pagamento não aplicado à assinatura"
    billing.rpc.reconcile()
    assert order_status(billing, order) == "refunded"
    [refunded] = billing.received(events, 1)
    assert (refunded["type"], refunded["data"]["actor"]) == ("order_refunded", "system")
    # The second delivery found the first's refund: one refund at billing and at the processor.
    assert count_rows(Refund.__table__) == 1 and count_rows(sandbox.refunds) == 1
    no_more(events)
