"""What billing's RPCs accept, and the order dict they answer with."""
from datetime import date, datetime, timezone

import pytest

from services.billing.models import Order
from services.billing.schemas import MAX_CHARGE_BATCH, OrderEventSchema, OrderInputSchema, OrderSchema, OrdersByKeysSchema
from services.common.errors import ValidationFailed
from services.common.validation import load

CARD = {"method": "credit_card", "card_brand": "visa", "card_last4": "4242", "card_exp": "08/2030", "token": "tok_1"}


def order_input(**changes):
    return {
        "merchant_id": "acme-cursos", "external_id": "order-1",
        "buyer": {"email": "Ana@Example.com", "name": "Ana Souza", "document": "123.456.789-09"},
        "product_name": "Curso Completo", "amount_cents": 2990, "status": "paid", "payment": CARD,
        **changes,
    }


def failed_fields(data):
    with pytest.raises(ValidationFailed) as failure:
        load(OrderInputSchema(), data)
    return failure.value.fields


def test_an_order_input_is_loaded_with_defaults():
    data = load(OrderInputSchema(), order_input())
    assert data["buyer"]["email"] == "ana@example.com"
    assert (data["installments"], data["created_at"], data["paid_at"], data["subscription_id"]) == (1, None, None, None)


def test_a_boleto_order_keeps_its_line_as_digits_and_its_due_date():
    data = load(OrderInputSchema(), order_input(status="pending", payment={
        "method": "boleto", "boleto_line": "23793.38102 90000.001231 45012.345604 1 12340000004700",
        "boleto_due_date": "2026-12-01",
    }))
    assert data["payment"]["boleto_line"] == "23793381029000000123145012345604112340000004700"
    assert data["payment"]["boleto_due_date"] == date(2026, 12, 1)


def test_a_card_number_or_cvv_is_never_accepted():
    fields = failed_fields(order_input(payment={**CARD, "card_number": "4242424242424242", "cvv": "123"}))
    assert fields == {"payment": {"card_number": ["Unknown field."], "cvv": ["Unknown field."]}}


def test_bad_fields_are_named():
    fields = failed_fields(order_input(
        amount_cents=0, installments=13, status="lost", buyer={"name": "Ana"}, subscription_id="not-a-uuid",
    ))
    assert set(fields) == {"amount_cents", "installments", "status", "buyer", "subscription_id"}
    assert set(fields["buyer"]) == {"email"}
    assert set(failed_fields(order_input(amount_cents=29.9))) == {"amount_cents"}


def test_cross_field_rules_are_named():
    fields = failed_fields(order_input(status="pending", installments=3, payment={"method": "pix"}))
    assert fields == {"payment": {"pix_code": ["Required for pix."]}, "installments": ["Installments are for credit_card only."]}


def test_the_order_view():
    order = Order(
        id="0d0e0f00-0000-4000-8000-000000000001", code="PED-ABCDEFGH", merchant_id="acme-cursos",
        external_id="order-1", email="ana@example.com", buyer_name="Ana Souza",
        buyer_document="123.456.789-09", buyer_phone="+55 11 98765-4321",
        address={"street": "Rua Augusta", "number": "1500", "city": "São Paulo", "state": "SP",
                 "postal_code": "01310-100", "country": "BR", "complement": None, "district": None},
        product_name="Curso Completo", offer_id="basico", subscription_id="5a0f0d0e-0000-4000-8000-000000000001",
        cycle_number=1, amount_cents=2990, installments=1, status="paid", payment_method="credit_card",
        card_brand="visa", card_last4="4242", created_at=datetime(2026, 11, 1, 12, tzinfo=timezone.utc),
        paid_at=datetime(2026, 11, 1, 12, 1, tzinfo=timezone.utc),
    )
    view = OrderSchema().dump(order)
    assert view == {
        "code": "PED-ABCDEFGH",
        "merchant": {"id": "acme-cursos"},
        "product_name": "Curso Completo",
        "amount_cents": 2990,
        "installments": 1,
        "status": "paid",
        "created_at": "2026-11-01T12:00:00+00:00",
        "paid_at": "2026-11-01T12:01:00+00:00",
        "payment": {"method": "credit_card", "card_brand": "visa", "card_last4": "4242",
                    "boleto_line": None, "boleto_due_date": None, "boleto_barcode": None, "boleto_pdf_url": None,
                    "pix_code": None},
        "buyer": {"name": "Ana Souza", "email": "ana@example.com", "document": "123.456.789-09"},
        "address": order.address,
        "subscription_id": "5a0f0d0e-0000-4000-8000-000000000001",
        "cycle_number": 1,
        "idempotency_key": None,
        "kind": None,
        "decline_reason": None,
    }


# Banco do Brasil's published example (tests/unit/billing/test_boleto.py).
BB_LINE, BB_BARCODE = "00190500954014481606906809350314337370000000100", "00193373700000001000500940144816060680935031"


@pytest.mark.parametrize("stored, line, shown", [
    ("34197392900003070141670004635640646091058000", BB_LINE, "34197392900003070141670004635640646091058000"),
    (None, BB_LINE, BB_BARCODE),  # a checkout's order: derived from its line
    (None, BB_LINE[:-1] + "1", None),  # a line with a wrong check digit: no barcode to draw
    (None, None, None),
])
def test_a_boleto_s_barcode_is_the_processor_s_else_derived_from_its_line(stored, line, shown):
    order = Order(payment_method="boleto", boleto_line=line, boleto_barcode=stored,
                  boleto_pdf_url="https://pay.example/b/1.pdf")
    payment = OrderSchema().dump(order)["payment"]
    assert payment["boleto_barcode"] == shown
    assert payment["boleto_pdf_url"] == "https://pay.example/b/1.pdf"


def test_order_event_data_is_checked():
    errors = OrderEventSchema().validate({
        "order_id": "x", "code": "ORDER-1", "email": "ana@example.com", "subscription_id": None,
        "cycle_number": None, "kind": None,
        "idempotency_key": None, "amount_cents": 1, "status": "paid", "method": "cash",
    })
    assert set(errors) == {"code", "method"}


@pytest.mark.parametrize("keys", ["renewal:1", [1], [""], ["k"] * (MAX_CHARGE_BATCH + 1)])
def test_orders_by_keys_takes_a_bounded_list_of_keys(keys):
    with pytest.raises(ValidationFailed) as failure:
        load(OrdersByKeysSchema(), {"idempotency_keys": keys})
    assert "idempotency_keys" in failure.value.fields
    assert load(OrdersByKeysSchema(), {"idempotency_keys": ["renewal:1"]}) == {"idempotency_keys": ["renewal:1"]}
