"""Charges through billing on a real broker and database, with the sandbox processor:
each outcome, each key charged once, and the reconciler settling the unknown."""
import json
import uuid
from datetime import datetime, timedelta, timezone
from queue import Empty

import eventlet
import pytest
import requests
from sqlalchemy import select

from services.billing import domain
from services.billing.models import Order, PaymentMethod, outbox, sandbox
from services.billing.processors import ProcessorUnavailable, boleto, brcode
from services.common import clock
from services.common.db import make_engine
from services.common.errors import ValidationFailed
from support.billing_requests import charge_request, post_callback, signed
from support.ports import free_port

APPROVE, DECLINE, NETWORK_ERROR, NO_FUNDS = (
    "4242424242424242", "4000000000000002", "4000000000000119", "4000000000009995",
)
ORDER_EVENTS = ("order_created", "order_paid", "charge_failed")


def no_more(queue):
    with pytest.raises(Empty):
        queue.get(timeout=1)


def test_an_approved_card_pays_the_order_and_says_so(billing, event_queue, count_rows):
    token = billing.add_card(APPROVE)
    events = event_queue("billing", *ORDER_EVENTS)
    request = charge_request(token, installments=3)

    order = billing.rpc.charge(request)

    assert (order["status"], order["kind"], order["idempotency_key"]) == ("paid", "plan_change", request["idempotency_key"])
    assert (order["amount_cents"], order["installments"], order["decline_reason"]) == (4990, 3, None)
    assert order["payment"]["method"] == "credit_card"
    assert (order["payment"]["card_brand"], order["payment"]["card_last4"]) == ("visa", "4242")
    assert datetime.fromisoformat(order["paid_at"]).tzinfo is not None
    created, paid = billing.received(events, 2)
    no_more(events)
    assert [created["type"], paid["type"]] == ["order_created", "order_paid"]
    assert paid["merchant_id"] == "acme-cursos"
    assert paid["data"] == {
        "order_id": paid["data"]["order_id"], "code": order["code"], "email": request["email"],
        "subscription_id": request["subscription_id"],
        "cycle_number": 1, "kind": "plan_change", "idempotency_key": request["idempotency_key"],
        "amount_cents": 4990, "status": "paid", "method": "credit_card", "settled_at_charge": True,
    }
    assert billing.sandbox_charges(request["idempotency_key"]) == 1
    identity = {**{"email": "ana@example.com", "merchant_id": None}, "session_id": "s"}
    assert billing.rpc.get_order(identity, order["code"]) == {**order, "refunds": [], "refunded_cents": 0}


@pytest.mark.parametrize("number, reason", [(DECLINE, "card_declined"), (NO_FUNDS, "insufficient_funds")])
def test_a_declined_card_refuses_the_order_and_changes_nothing_else(billing, event_queue, count_rows, number, reason):
    token = billing.add_card(number)
    cards_before = count_rows(PaymentMethod)
    events = event_queue("billing", *ORDER_EVENTS)
    request = charge_request(token)

    order = billing.rpc.charge(request)

    assert (order["status"], order["decline_reason"], order["paid_at"]) == ("refused", reason, None)
    created, failed = billing.received(events, 2)
    no_more(events)
    assert [created["type"], failed["type"]] == ["order_created", "charge_failed"]
    assert (failed["data"]["decline_reason"], failed["data"]["status"]) == (reason, "refused")
    assert failed["data"]["settled_at_charge"] is True
    assert failed["data"]["idempotency_key"] == request["idempotency_key"]
    assert count_rows(Order) == 1
    assert count_rows(PaymentMethod) == cards_before
    # Asking again under the same key does not charge the card again.
    assert billing.rpc.charge(request) == order
    assert billing.sandbox_charges(request["idempotency_key"]) == 1


def test_a_lost_answer_stays_unconfirmed_until_the_reconciler_finds_it_paid(billing, event_queue, count_rows):
    token = billing.add_card(NETWORK_ERROR)
    events = event_queue("billing", *ORDER_EVENTS)
    request = charge_request(token)

    order = billing.rpc.charge(request)

    assert (order["status"], order["paid_at"]) == ("pending_confirmation", None)
    assert [envelope["type"] for envelope in billing.received(events, 1)] == ["order_created"]
    no_more(events)
    # A repeat is answered from the stored order, never charged under a new key.
    assert billing.rpc.charge(request)["status"] == "pending_confirmation"

    assert billing.rpc.reconcile() == {"checked": 1, "settled": 1}

    identity = {"email": "ana@example.com", "merchant_id": "acme-cursos", "session_id": "s"}
    settled = billing.rpc.get_order(identity, order["code"])
    assert (settled["status"], settled["code"]) == ("paid", order["code"])
    [paid] = billing.received(events, 1)
    # Settled after the charge's answer: its caller learns it from this event.
    assert (paid["type"], paid["data"]["settled_at_charge"]) == ("order_paid", False)
    assert billing.rpc.reconcile() == {"checked": 0, "settled": 0}
    assert billing.rpc.charge(request)["status"] == "paid"
    no_more(events)
    assert billing.sandbox_charges(request["idempotency_key"]) == 1
    assert count_rows(Order) == 1


@pytest.mark.parametrize("billing_overrides", [{"RECONCILE_INTERVAL": 0.2}])
def test_the_reconciler_runs_on_its_own(billing, billing_overrides):
    token = billing.add_card(NETWORK_ERROR)
    order = billing.rpc.charge(charge_request(token))
    assert order["status"] == "pending_confirmation"
    identity = {"email": "ana@example.com", "merchant_id": None, "session_id": "s"}
    with eventlet.Timeout(10):
        while billing.rpc.get_order(identity, order["code"])["status"] != "paid":
            eventlet.sleep(0.1)


def test_a_charge_the_processor_never_received_is_sent_again_under_its_key(
        billing, event_queue, tmp_path, monkeypatch):
    token = billing.add_card(APPROVE)
    events = event_queue("billing", *ORDER_EVENTS)
    request = charge_request(token)
    never_arrives = ProcessorUnavailable("connection refused before sending")
    with monkeypatch.context() as patch:
        patch.setattr(billing.processor, "charge_card", lambda *args: (_ for _ in ()).throw(never_arrives))
        assert billing.rpc.charge(request)["status"] == "pending_confirmation"
    assert billing.sandbox_charges(request["idempotency_key"]) == 0

    # Too soon to tell a lost request from one still on its way: wait.
    assert billing.rpc.reconcile() == {"checked": 1, "settled": 0}
    clock_file = tmp_path / "clock.json"
    monkeypatch.setenv("CLOCK_FILE", str(clock_file))
    clock.write_clock_file(clock_file, frozen_at=datetime.now(timezone.utc) + domain.RESUBMIT_AFTER + timedelta(seconds=5))
    assert billing.rpc.reconcile() == {"checked": 1, "settled": 1}

    assert billing.rpc.charge(request)["status"] == "paid"
    assert billing.sandbox_charges(request["idempotency_key"]) == 1
    assert [envelope["type"] for envelope in billing.received(events, 2)] == ["order_created", "order_paid"]
    no_more(events)


def test_a_sandbox_whose_database_does_not_answer_leaves_the_charge_to_the_reconciler(billing, monkeypatch):
    token = billing.add_card(APPROVE)
    request = charge_request(token)
    # Out of connections, or gone: to billing, a processor that does not answer.
    unreachable = make_engine(f"postgresql://postgres@127.0.0.1:{free_port()}/nothing")
    with monkeypatch.context() as patch:
        patch.setattr(billing.processor, "engine", unreachable)
        assert billing.rpc.charge(request)["status"] == "pending_confirmation"
    unreachable.dispose()

    assert billing.rpc.reconcile() == {"checked": 1, "settled": 0}
    assert billing.sandbox_charges(request["idempotency_key"]) == 0


def test_a_subscriptions_invoice_history_is_that_buyers_orders_of_it(billing):
    token = billing.add_card(APPROVE)
    subscription = str(uuid.uuid4())
    first = billing.rpc.charge(charge_request(token, subscription_id=subscription, cycle_number=1))
    second = billing.rpc.charge(charge_request(token, subscription_id=subscription, cycle_number=2))
    billing.rpc.charge(charge_request(token))  # another of Ana's subscriptions
    ana = {"email": "ana@example.com", "merchant_id": None, "session_id": "s"}
    everything = billing.rpc.list_orders(ana)

    history = billing.rpc.list_orders(ana, subscription)
    assert sorted(order["code"] for order in history) == sorted([first["code"], second["code"]])
    # In the order of the whole list: newest first.
    assert history == [order for order in everything if order["subscription_id"] == subscription]
    assert len(everything) == 3
    assert billing.rpc.list_orders({**ana, "email": "bruno@example.com"}, subscription) == []
    assert billing.rpc.list_orders(ana, str(uuid.uuid4())) == []
    assert billing.rpc.list_orders(ana, 42) == []


def test_one_key_is_one_order_and_one_charge_however_often_it_is_asked(billing, event_queue, count_rows):
    token = billing.add_card(APPROVE)
    events = event_queue("billing", *ORDER_EVENTS)
    request = charge_request(token)

    first = billing.rpc.charge(request)
    assert billing.rpc.charge(request) == first

    concurrent = charge_request(token, idempotency_key=f"renewal:{uuid.uuid4()}:2", kind="renewal", cycle_number=2)
    calls = [billing.rpc.charge.call_async(concurrent) for _ in range(20)]
    answers = [call.result() for call in calls]

    assert len({answer["code"] for answer in answers}) == 1
    assert billing.rpc.charge(concurrent)["status"] == "paid"
    assert count_rows(Order) == 2
    assert count_rows(Order, idempotency_key=concurrent["idempotency_key"]) == 1
    assert billing.sandbox_charges(request["idempotency_key"]) == 1
    assert billing.sandbox_charges(concurrent["idempotency_key"]) == 1
    types = [envelope["type"] for envelope in billing.received(events, 4)]
    assert sorted(types) == ["order_created", "order_created", "order_paid", "order_paid"]
    no_more(events)


def test_a_batch_charges_each_key_once_and_one_refusal_leaves_the_others_be(billing, event_queue, count_rows):
    approved, declined, lost = billing.add_card(APPROVE), billing.add_card(DECLINE), billing.add_card(NETWORK_ERROR)
    strangers = billing.add_card(APPROVE, buyer={"email": "bruno@example.com", "merchant_id": "acme-cursos"})
    events = event_queue("billing", *ORDER_EVENTS)
    batch = [
        charge_request(token, idempotency_key=f"renewal:{uuid.uuid4()}:2", kind="renewal", cycle_number=2)
        for token in (approved, declined, strangers, lost)
    ] + [charge_request(None, amount_cents=-1)]

    answers = billing.rpc.charge_batch(batch)

    orders = [answer["order"] for answer in answers]
    assert [order and order["status"] for order in orders] == [
        "paid", "refused", None, "pending_confirmation", None]
    assert [order["idempotency_key"] for order in orders if order] == [
        batch[0]["idempotency_key"], batch[1]["idempotency_key"], batch[3]["idempotency_key"]]
    assert [answer["error"] and answer["error"]["code"] for answer in answers] == [
        None, None, "validation_error", None, "validation_error"]
    assert set(answers[2]["error"]["fields"]) == {"payment_token"}
    assert count_rows(Order) == 3
    received = billing.received(events, 5)
    assert sorted(envelope["type"] for envelope in received) == [
        "charge_failed", "order_created", "order_created", "order_created", "order_paid"]
    assert [envelope["data"]["settled_at_charge"] for envelope in received
            if envelope["type"] in ("order_paid", "charge_failed")] == [True, True]
    no_more(events)

    # A redelivered batch answers each key with its first order and charges nothing more;
    # the lost answer stays pending_confirmation for the reconciler, under its key.
    assert billing.rpc.charge_batch(batch) == answers
    assert [billing.sandbox_charges(request["idempotency_key"]) for request in batch] == [1, 1, 0, 1, 0]
    assert count_rows(Order) == 3
    no_more(events)
    assert billing.rpc.reconcile() == {"checked": 1, "settled": 1}
    assert billing.rpc.charge_batch([batch[3]])[0]["order"]["status"] == "paid"
    assert billing.rpc.charge_batch([]) == []
    with pytest.raises(ValidationFailed):
        billing.rpc.charge_batch({"not": "a list"})


def test_nothing_to_charge_is_paid_without_the_processor(billing, event_queue, count_rows):
    token = billing.add_card(DECLINE)  # would be declined, were it charged
    events = event_queue("billing", *ORDER_EVENTS)
    request = charge_request(token, amount_cents=0)

    order = billing.rpc.charge(request)

    assert (order["status"], order["amount_cents"]) == ("paid", 0)
    assert order["paid_at"] is not None
    assert [envelope["type"] for envelope in billing.received(events, 2)] == ["order_created", "order_paid"]
    no_more(events)
    assert billing.sandbox_charges(request["idempotency_key"]) == 0


def test_a_token_of_another_buyer_charges_nothing(billing, count_rows):
    token = billing.add_card(APPROVE, buyer={"email": "bruno@example.com", "merchant_id": "acme-cursos"})
    with pytest.raises(ValidationFailed) as refused:
        billing.rpc.charge(charge_request(token))
    assert set(refused.value.fields) == {"payment_token"}
    assert count_rows(Order) == 0
    with pytest.raises(ValidationFailed) as refused:
        billing.rpc.charge(charge_request(None, amount_cents=-1, installments=13, kind="gift"))
    assert set(refused.value.fields) == {"amount_cents", "installments", "kind"}


def test_the_buyer_snapshot_comes_from_the_subscriptions_last_order(billing):
    subscription_id = billing.subscription_of({"email": "ana@example.com", "merchant_id": "acme-cursos"})
    billing.rpc.record_order({
        "merchant_id": "acme-cursos", "external_id": "checkout-1", "subscription_id": subscription_id,
        "cycle_number": 1, "buyer": {"email": "ana@example.com", "name": "Ana Souza", "document": "123.456.789-09"},
        "product_name": "Curso Completo", "amount_cents": 2990, "status": "paid",
        "payment": {"method": "pix", "pix_code": "000201"},
    })
    order = billing.rpc.charge(charge_request(None, method="pix", subscription_id=subscription_id, cycle_number=2,
                                              kind="renewal"))
    assert order["buyer"] == {"name": "Ana Souza", "email": "ana@example.com", "document": "123.456.789-09"}


@pytest.mark.parametrize("method", ["boleto", "pix"])
def test_boleto_and_pix_wait_for_payment_and_the_sandbox_pays_them_once(billing, event_queue, count_rows, method):
    events = event_queue("billing", *ORDER_EVENTS)
    due_at = (clock.now() + timedelta(days=5)).isoformat()
    request = charge_request(None, method=method, kind="renewal", amount_cents=12345,
                             **({"due_at": due_at} if method == "boleto" else {}))

    order = billing.rpc.charge(request)

    assert (order["status"], order["paid_at"]) == ("pending", None)
    payment = order["payment"]
    if method == "boleto":
        assert boleto.line_is_valid(payment["boleto_line"])
        assert int(payment["boleto_line"][37:]) == 12345
        due = datetime.fromisoformat(due_at).astimezone(domain.BOLETO_TIMEZONE).date()
        assert payment["boleto_due_date"] == due.isoformat()
        assert boleto.due_date_from_factor(int(payment["boleto_line"][33:37]), near=due) == due
        # The barcode as the processor gave it, kept on the order; the sandbox has no PDF.
        assert payment["boleto_barcode"] == boleto.barcode_from_line(payment["boleto_line"])
        assert count_rows(Order, code=order["code"], boleto_barcode=payment["boleto_barcode"]) == 1
        assert payment["boleto_pdf_url"] is None
    else:
        fields = brcode.parse_pix_code(payment["pix_code"])
        assert fields["54"] == "123.45"
        assert fields["62"]["05"].isalnum()
    assert [envelope["type"] for envelope in billing.received(events, 1)] == ["order_created"]

    paid = requests.post(billing.url(f"/sandbox/orders/{order['code']}/pay"), timeout=10)
    again = requests.post(billing.url(f"/sandbox/orders/{order['code'].lower()}/pay"), timeout=10)

    assert paid.status_code == again.status_code == 200
    assert paid.json()["order"]["status"] == again.json()["order"]["status"] == "paid"
    assert paid.json()["order"]["payment"] == payment
    [envelope] = billing.received(events, 1)
    assert (envelope["type"], envelope["data"]["code"], envelope["data"]["method"]) == ("order_paid", order["code"], method)
    assert envelope["data"]["settled_at_charge"] is False
    no_more(events)


def test_the_pay_action_is_for_pending_sandbox_orders_only(billing):
    token = billing.add_card(APPROVE)
    card_order = billing.rpc.charge(charge_request(token))
    assert requests.post(billing.url(f"/sandbox/orders/{card_order['code']}/pay"), timeout=10).status_code == 409
    missing = requests.post(billing.url("/sandbox/orders/PED-AAAAAAAA/pay"), timeout=10)
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")


def test_a_signed_callback_settles_the_order_once(billing, event_queue):
    events = event_queue("billing", *ORDER_EVENTS)
    request = charge_request(None, method="pix", kind="renewal")
    order = billing.rpc.charge(request)
    billing.received(events, 1)
    secret = billing.config["PROCESSOR_WEBHOOK_SECRET"]
    callback = billing.url("/callbacks/sandbox")
    body, headers = signed(secret, {"idempotency_key": request["idempotency_key"]})

    # Before the processor has it paid, a callback changes nothing.
    early = requests.post(callback, data=body, headers=headers, timeout=10)
    assert (early.status_code, early.json()["status"]) == (200, "pending")
    no_more(events)

    billing.processor.pay(request["idempotency_key"])  # the buyer pays, at the processor
    forged = requests.post(callback, data=body, timeout=10,
                           headers={**headers, "X-Signature": domain.callback_signature("guess", body)})
    unsigned = requests.post(callback, data=body, timeout=10, headers={"Content-Type": "application/json"})
    assert forged.status_code == unsigned.status_code == 401
    assert forged.json()["error"]["code"] == "bad_signature"
    no_more(events)

    first = requests.post(callback, data=body, headers=headers, timeout=10)
    repeat = requests.post(callback, data=body, headers=headers, timeout=10)

    assert first.json() == repeat.json() == {"code": order["code"], "status": "paid"}
    [envelope] = billing.received(events, 1)
    assert (envelope["type"], envelope["data"]["code"]) == ("order_paid", order["code"])
    no_more(events)
    other_processor = requests.post(billing.url("/callbacks/acme-pay"), data=body, headers=headers, timeout=10)
    unknown_key = requests.post(callback, timeout=10, **dict(zip(("data", "headers"), signed(secret, {"idempotency_key": "nope"}))))
    assert other_processor.status_code == unknown_key.status_code == 404


def test_billing_answers_healthz(billing):
    answer = requests.get(billing.url("/healthz"), timeout=10)
    assert (answer.status_code, answer.json()) == (200, {"status": "ok"})


# -- replayed callbacks: a callback only makes billing ask the processor, so an old one
# sent again (anyone who saw it can) moves no order the processor's answer does not move.

@pytest.fixture
def billing_rows(billing_config):
    """Every order, every event billing committed and every charge of the sandbox, as
    they stand: what a replayed callback must leave as it found it. An event's
    `published_at` is left out: the relay sets it when the broker confirms, which may
    come after a consumer already has the event."""
    engine = make_engine(billing_config["BILLING_DB_URL"])
    columns = {
        table: [column for column in table.columns if (table, column.name) != (outbox, "published_at")]
        for table in (Order.__table__, outbox, sandbox.charges)
    }

    def snapshot():
        with engine.connect() as connection:
            return {table.name: connection.execute(select(*kept).order_by(*table.primary_key)).mappings().all()
                    for table, kept in columns.items()}

    yield snapshot
    engine.dispose()


def test_an_old_callback_replayed_after_later_changes_changes_no_order(billing, event_queue, billing_rows):
    events = event_queue("billing", *ORDER_EVENTS)
    secret = billing.config["PROCESSOR_WEBHOOK_SECRET"]
    subscription_id = str(uuid.uuid4())
    first_cycle = charge_request(None, method="pix", kind="renewal", subscription_id=subscription_id)
    first_order = billing.rpc.charge(first_cycle)
    billing.processor.pay(first_cycle["idempotency_key"])
    paid_callback = signed(secret, {"idempotency_key": first_cycle["idempotency_key"]})
    assert post_callback(billing, *paid_callback).json() == {"code": first_order["code"], "status": "paid"}
    declined = charge_request(billing.add_card(DECLINE))
    refused_order = billing.rpc.charge(declined)
    assert refused_order["status"] == "refused"
    refused_callback = signed(secret, {"idempotency_key": declined["idempotency_key"]})
    assert post_callback(billing, *refused_callback).json()["status"] == "refused"

    # Later: the subscription renews (its next charge still pending), the paid charge is
    # refunded at the processor, and another of the buyer's cards is declined.
    renewal = charge_request(None, method="pix", kind="renewal", subscription_id=subscription_id, cycle_number=2,
                             idempotency_key=f"renewal:{subscription_id}:2")
    assert billing.rpc.charge(renewal)["status"] == "pending"
    billing.processor.refund(first_cycle["idempotency_key"], "refund:r1", first_cycle["amount_cents"])
    assert billing.processor.find_refund(first_cycle["idempotency_key"], "refund:r1").status == "done"
    assert billing.processor.find_charge(first_cycle["idempotency_key"]).status == "refunded"
    assert billing.rpc.charge(charge_request(billing.add_card(NO_FUNDS)))["status"] == "refused"
    billing.received(events, 7)  # 4 orders created, 1 paid, 2 refused
    no_more(events)
    before = billing_rows()

    replies = [post_callback(billing, *callback) for _ in range(3) for callback in (paid_callback, refused_callback)]

    assert [reply.status_code for reply in replies] == [200] * 6
    assert {(reply.json()["code"], reply.json()["status"]) for reply in replies} == {
        (first_order["code"], "paid"), (refused_order["code"], "refused")}
    assert billing_rows() == before
    no_more(events)


def test_a_replayed_callback_of_a_charge_still_pending_leaves_it_pending(
        billing, event_queue, billing_rows, tmp_path, monkeypatch):
    events = event_queue("billing", *ORDER_EVENTS)
    request = charge_request(None, method="boleto", kind="renewal")
    order = billing.rpc.charge(request)
    callback = signed(billing.config["PROCESSOR_WEBHOOK_SECRET"], {"idempotency_key": request["idempotency_key"]})
    assert post_callback(billing, *callback).json() == {"code": order["code"], "status": "pending"}
    billing.received(events, 1)
    # The boleto's due date passes unpaid: the processor still has it pending.
    clock_file = tmp_path / "clock.json"
    monkeypatch.setenv("CLOCK_FILE", str(clock_file))
    clock.write_clock_file(clock_file, frozen_at=datetime.now(timezone.utc) + timedelta(days=domain.BOLETO_DUE_DAYS + 7))
    before = billing_rows()

    replies = [post_callback(billing, *callback) for _ in range(3)]

    assert [(reply.status_code, reply.json()["status"]) for reply in replies] == [(200, "pending")] * 3
    assert billing_rows() == before
    no_more(events)


def test_a_callbacks_signature_replayed_with_another_body_is_refused(billing, event_queue, billing_rows):
    events = event_queue("billing", *ORDER_EVENTS)
    secret = billing.config["PROCESSOR_WEBHOOK_SECRET"]
    seen, other = (charge_request(None, method="pix", kind="renewal") for _ in range(2))
    billing.rpc.charge(seen)
    other_order = billing.rpc.charge(other)
    _, seen_headers = signed(secret, {"idempotency_key": seen["idempotency_key"]})
    # The other order is paid at the processor: a callback about it that billing took
    # would settle it.
    billing.processor.pay(other["idempotency_key"])
    other_body, other_headers = signed(secret, {"idempotency_key": other["idempotency_key"]})
    billing.received(events, 2)
    before = billing_rows()

    forgeries = [
        (other_body, seen_headers),
        (json.dumps({"idempotency_key": other["idempotency_key"]}, indent=1).encode(), other_headers),
        (json.dumps({"idempotency_key": other["idempotency_key"], "note": "x"}).encode(), other_headers),
    ]
    replies = [post_callback(billing, body, headers) for body, headers in forgeries]

    assert [(reply.status_code, reply.json()["error"]["code"]) for reply in replies] == [(401, "bad_signature")] * 3
    assert billing_rows() == before
    no_more(events)
    # Its own signature, the processor's answer settles it.
    assert post_callback(billing, other_body, other_headers).json() == {"code": other_order["code"], "status": "paid"}
