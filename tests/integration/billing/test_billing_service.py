"""The billing service on a real broker and a real database."""
import uuid
from datetime import datetime
from queue import Empty

import pytest
from sqlalchemy import func, select

from services.billing.domain import ORDER_CODE
from services.billing.models import Order, PaymentMethod
from services.common.db import make_engine
from services.common.errors import NotFound, ValidationFailed

CARD = {"method": "credit_card", "card_brand": "visa", "card_last4": "4242", "card_exp": "08/2030", "token": "tok_ana"}
BOLETO = {"method": "boleto", "boleto_line": "23793.38102 90000.001231 45012.345604 1 12340000004700",
          "boleto_due_date": "2026-12-01"}
ADDRESS = {"street": "Rua Augusta", "number": "1500", "complement": "Apto 42", "district": "Consolação",
           "city": "São Paulo", "state": "SP", "postal_code": "01310-100", "country": "BR"}


def identity(email, merchant_id=None):
    return {"email": email, "merchant_id": merchant_id, "session_id": "test-session"}


def order(external_id, merchant_id="acme-cursos", email="ana@example.com", **changes):
    return {
        "merchant_id": merchant_id, "external_id": external_id,
        "buyer": {"email": email, "name": "Ana Souza", "document": "123.456.789-09", "phone": "+55 11 98765-4321"},
        "address": ADDRESS, "product_name": "Curso Completo", "amount_cents": 2990, "status": "paid",
        "payment": CARD, **changes,
    }


@pytest.fixture
def config(billing_config):
    return billing_config


@pytest.fixture
def rpc(billing):
    return billing.rpc


@pytest.fixture
def count_rows(config):
    engine = make_engine(config["BILLING_DB_URL"])

    def count(model):
        with engine.connect() as connection:
            return connection.execute(select(func.count()).select_from(model)).scalar_one()

    yield count
    engine.dispose()


def test_intake_is_idempotent_and_announced_once(billing, rpc, event_queue, count_rows):
    events = event_queue("billing", "order_created", "order_paid")
    subscription_id = billing.subscription_of({"email": "ana@example.com", "merchant_id": "acme-cursos"})

    first = rpc.record_order(order("checkout-1", subscription_id=subscription_id, cycle_number=1,
                                   created_at="2026-11-01T12:00:00+00:00"))
    repeat = rpc.record_order(order("checkout-1", amount_cents=1, status="refused"))

    assert repeat == first
    assert ORDER_CODE.match(first["code"])
    assert (first["status"], first["paid_at"]) == ("paid", "2026-11-01T12:00:00+00:00")
    assert count_rows(Order) == 1
    assert count_rows(PaymentMethod) == 1

    received = []
    for _ in range(2):
        message = events.get(timeout=10)
        message.ack()
        received.append(message.payload)
    with pytest.raises(Empty):
        events.get(timeout=1)
    assert [envelope["type"] for envelope in received] == ["order_created", "order_paid"]
    for envelope in received:
        assert set(envelope) == {"event_id", "type", "version", "occurred_at", "merchant_id", "data"}
        assert (envelope["version"], envelope["merchant_id"]) == (1, "acme-cursos")
        assert datetime.fromisoformat(envelope["occurred_at"]).tzinfo is not None
        assert envelope["data"]["code"] == first["code"]
        assert envelope["data"] == {
            "order_id": envelope["data"]["order_id"], "code": first["code"], "email": "ana@example.com",
            "subscription_id": subscription_id,
            "cycle_number": 1, "kind": None, "idempotency_key": None,
            "amount_cents": 2990, "status": "paid", "method": "credit_card",
            # An intake's paid order was paid before billing heard of it.
            **({"settled_at_charge": False} if envelope["type"] == "order_paid" else {}),
        }
    assert received[0]["event_id"] != received[1]["event_id"]


def test_a_pending_order_is_created_but_not_paid(rpc, event_queue):
    events = event_queue("billing", "order_created", "order_paid")
    pending = rpc.record_order(order("ebook-1", product_name="E-book Finanças Pessoais", amount_cents=4700,
                                     status="pending", payment=BOLETO))

    assert pending["paid_at"] is None
    assert pending["payment"] == {
        "method": "boleto", "card_brand": None, "card_last4": None,
        "boleto_line": "23793381029000000123145012345604112340000004700", "boleto_due_date": "2026-12-01",
        # A checkout sends the line only: the barcode is derived from it; no processor PDF.
        "boleto_barcode": "23791123400000047003381090000001234501234560", "boleto_pdf_url": None,
        "pix_code": None,
    }
    message = events.get(timeout=10)
    message.ack()
    assert (message.payload["type"], message.payload["data"]["status"], message.payload["data"]["method"]) == (
        "order_created", "pending", "boleto")
    with pytest.raises(Empty):
        events.get(timeout=1)


def test_a_refused_order_of_a_checkout_is_recorded_and_announced(rpc, event_queue):
    events = event_queue("billing", "order_created", "order_paid", "charge_failed")
    refused = rpc.record_order(order("checkout-2", status="refused"))

    assert (refused["status"], refused["paid_at"], refused["decline_reason"]) == ("refused", None, None)
    message = events.get(timeout=10)
    message.ack()
    assert (message.payload["type"], message.payload["data"]["status"]) == ("order_created", "refused")
    with pytest.raises(Empty):
        events.get(timeout=1)


def test_the_order_as_the_buyer_sees_it(rpc):
    recorded = rpc.record_order(order("checkout-1", created_at="2026-11-01T12:00:00-03:00"))

    # The buyer's reads add the order's refunds (none yet).
    assert rpc.get_order(identity("ana@example.com"), recorded["code"]) == {**recorded, "refunds": [], "refunded_cents": 0}
    assert recorded == {
        "code": recorded["code"],
        "merchant": {"id": "acme-cursos"},
        "product_name": "Curso Completo",
        "amount_cents": 2990,
        "installments": 1,
        "status": "paid",
        "created_at": "2026-11-01T15:00:00+00:00",
        "paid_at": "2026-11-01T15:00:00+00:00",
        "payment": {"method": "credit_card", "card_brand": "visa", "card_last4": "4242",
                    "boleto_line": None, "boleto_due_date": None, "boleto_barcode": None,
                    "boleto_pdf_url": None, "pix_code": None},
        "buyer": {"name": "Ana Souza", "email": "ana@example.com", "document": "123.456.789-09"},
        "address": ADDRESS,
        "subscription_id": None,
        "cycle_number": None,
        "idempotency_key": None,
        "kind": None,
        "decline_reason": None,
    }
    assert "tok_ana" not in repr(recorded)
    # Codes are read aloud and typed: any case finds the order.
    assert rpc.get_order(identity("ana@example.com"), recorded["code"].lower())["code"] == recorded["code"]


def test_buyers_see_only_their_own_orders(rpc):
    older = rpc.record_order(order("ana-1", created_at="2026-11-01T12:00:00+00:00"))
    newer = rpc.record_order(order("ana-2", merchant_id="beta-software", created_at="2026-11-02T12:00:00+00:00",
                                   payment={**CARD, "token": "tok_ana_beta"}))
    bruno = rpc.record_order(order("bruno-1", email="bruno@example.com", payment={**CARD, "token": "tok_bruno"}))

    assert [item["code"] for item in rpc.list_orders(identity("Ana@Example.com"))] == [newer["code"], older["code"]]
    assert [item["code"] for item in rpc.list_orders(identity("bruno@example.com"))] == [bruno["code"]]
    assert rpc.list_orders(identity("nobody@example.com")) == []

    for someone_else, code in [
        (identity("bruno@example.com"), older["code"]),
        (identity("ana@example.com"), bruno["code"]),
        (identity("ana@example.com"), "PED-AAAAAAAA"),
        (identity("ana@example.com"), None),
    ]:
        with pytest.raises(NotFound):
            rpc.get_order(someone_else, code)


def test_a_merchant_scoped_session_sees_that_merchant_only(rpc):
    acme = rpc.record_order(order("ana-1"))
    beta = rpc.record_order(order("ana-2", merchant_id="beta-software", payment={**CARD, "token": "tok_ana_beta"}))

    scoped = identity("ana@example.com", merchant_id="acme-cursos")
    assert [item["code"] for item in rpc.list_orders(scoped)] == [acme["code"]]
    assert rpc.get_order(scoped, acme["code"])["code"] == acme["code"]
    with pytest.raises(NotFound):
        rpc.get_order(scoped, beta["code"])


def test_bad_input_names_the_fields(rpc, count_rows):
    with pytest.raises(ValidationFailed) as failure:
        rpc.record_order(order("x", amount_cents=0, payment={**CARD, "card_number": "4242424242424242", "cvv": "123"}))
    assert set(failure.value.fields) == {"amount_cents", "payment"}
    assert set(failure.value.fields["payment"]) == {"card_number", "cvv"}
    assert "4242424242424242" not in str(failure.value.args)

    with pytest.raises(ValidationFailed) as failure:
        rpc.record_order(order("x", status="pending", payment={"method": "boleto", "boleto_line": "123"}))
    assert failure.value.fields == {"payment": {"boleto_line": ["A boleto line has 47 digits."]}}

    with pytest.raises(ValidationFailed) as failure:
        rpc.record_order(order("x", status="pending", payment={"method": "boleto", "boleto_due_date": "2026-12-01"}))
    assert failure.value.fields == {"payment": {"boleto_line": ["Required for boleto."]}}

    with pytest.raises(ValidationFailed) as failure:
        rpc.list_orders({"email": "ana@example.com"})
    assert set(failure.value.fields) == {"merchant_id", "session_id"}
    assert count_rows(Order) == 0


def test_a_card_token_stays_with_the_buyer_it_was_issued_for(rpc, count_rows):
    rpc.record_order(order("ana-1"))
    with pytest.raises(ValidationFailed) as failure:
        rpc.record_order(order("bruno-1", email="bruno@example.com"))
    assert failure.value.fields == {"payment": {"token": ["Belongs to another buyer."]}}
    assert count_rows(Order) == 1


def test_an_order_names_only_a_subscription_of_its_merchant_and_buyer(billing, rpc, count_rows):
    anas = billing.subscription_of({"email": "ana@example.com", "merchant_id": "acme-cursos"})
    for sale in (
        order("other-merchant", merchant_id="beta-software", subscription_id=anas, payment={**CARD, "token": "tok_b"}),
        order("other-buyer", email="bruno@example.com", subscription_id=anas, payment={**CARD, "token": "tok_bruno"}),
        order("unknown", subscription_id=str(uuid.uuid4())),
    ):
        with pytest.raises(NotFound) as refused:
            rpc.record_order({**sale, "cycle_number": 1})
        assert refused.value.fields == {"subscription_id": ["No subscription of this merchant's buyer."]}
    assert count_rows(Order) == 0
    assert rpc.record_order(order("own", subscription_id=anas, cycle_number=1))["subscription_id"] == anas
