"""A sale's card at intake, `{customer_ref, card_ref, brand, last4, exp}`, checked
against the merchant's processor account in a running billing (devtools' fake Asaas
standing in for Asaas): kept and charged through that account, or refused naming
the field, with nothing recorded."""
import uuid

import pytest
import requests

from services.billing.processors import Card, CardHolder, make_processor
from services.common.errors import ValidationFailed
from support.asaas_accounts import ACME_KEY, GAMA_KEY, asaas_overrides, put_asaas_account

CARLA = CardHolder(name="Carla Dias", email="carla@example.com", document="529.982.247-25",
                   postal_code="01310-200", address_number="1578", phone="11987654321")


@pytest.fixture
def billing_overrides(fake_asaas, fake_mercadopago, web_config):
    return {**asaas_overrides(fake_asaas, web_config), "MERCADOPAGO_API_URL": fake_mercadopago.url}


@pytest.fixture
def on_asaas(billing):
    """Acme Cursos and Gama Academia, each on an Asaas account of its own."""
    put_asaas_account(billing, "acme-cursos", ACME_KEY)
    put_asaas_account(billing, "gama-academia", GAMA_KEY)


def tokenized_at(fake_asaas, api_key):
    """A card a checkout tokenized at the Asaas account of `api_key` → its sale card."""
    asaas = make_processor({"processor": "asaas", "ASAAS_SANDBOX_URL": fake_asaas.url},
                           credentials={"api_key": api_key}, environment="sandbox")
    token = asaas.tokenize(Card("4242424242424242", 5, 2035, "123", "CARLA DIAS"), CARLA, "203.0.113.7")
    asaas.close()
    return {"customer_ref": token.customer_ref, "card_ref": token.token, "brand": token.brand,
            "last4": token.last4, "exp": "05/2035"}


def order_with(merchant_id, payment):
    return {"merchant_id": merchant_id, "external_id": f"sale-{uuid.uuid4()}", "buyer": {"email": CARLA.email},
            "product_name": "Plano Mensal", "amount_cents": 9990, "status": "paid", "payment": payment}


def registered(merchant_id, card):
    return {"merchant_id": merchant_id, "email": CARLA.email, "payment": {"method": "credit_card", "card": card}}


def test_a_sale_card_of_the_merchants_account_is_kept_and_charged_there(billing, fake_asaas, on_asaas):
    card = tokenized_at(fake_asaas, GAMA_KEY)
    billing.rpc.register_card(registered("gama-academia", card))
    subscription_id = billing.subscription_of({"email": CARLA.email, "merchant_id": "gama-academia"})

    order = billing.rpc.charge({
        "idempotency_key": f"renewal:{subscription_id}:2", "merchant_id": "gama-academia", "email": CARLA.email,
        "subscription_id": subscription_id, "cycle_number": 2, "kind": "renewal", "product_name": "Plano Mensal",
        "amount_cents": 9990, "installments": 1, "method": "credit_card", "payment_token": card["card_ref"],
    })

    assert order["status"] == "paid" and order["payment"]["card_last4"] == "4242"
    [payment] = fake_asaas.fake.payments_of(GAMA_KEY, f"renewal:{subscription_id}:2")
    assert (payment["customer"], payment["creditCard"]["creditCardToken"]) == (card["customer_ref"], card["card_ref"])
    # An order's intake with the same card is the same payment method.
    recorded = billing.rpc.record_order(order_with("gama-academia", {"method": "credit_card", "card": card}))
    assert recorded["payment"] == {**recorded["payment"], "card_brand": "visa", "card_last4": "4242"}


def test_a_card_ref_of_another_account_is_refused_naming_it(billing, fake_asaas, on_asaas):
    acme_card = tokenized_at(fake_asaas, ACME_KEY)
    billing.rpc.register_card(registered("acme-cursos", acme_card))

    with pytest.raises(ValidationFailed) as refused_card:
        billing.rpc.register_card(registered("gama-academia", acme_card))
    with pytest.raises(ValidationFailed) as refused_order:
        billing.rpc.record_order(order_with("gama-academia", {"method": "credit_card", "card": acme_card}))

    for refused in (refused_card, refused_order):
        assert list(refused.value.fields["payment"]["card"]) == ["card_ref"]
    assert billing.rpc.list_orders({"email": CARLA.email, "merchant_id": None, "session_id": "s"}) == []


def test_a_customer_of_another_asaas_account_is_refused_naming_it(billing, fake_asaas, on_asaas):
    # Tokenized at Acme's Asaas, never handed to billing: only Asaas can tell.
    acme_card = tokenized_at(fake_asaas, ACME_KEY)

    with pytest.raises(ValidationFailed) as refused:
        billing.rpc.record_order(order_with("gama-academia", {"method": "credit_card", "card": acme_card}))

    assert refused.value.fields == {"payment": {"card": {"customer_ref": [
        "Not a customer of this merchant's Asaas account."]}}}
    assert ("GET", f"/v3/customers/{acme_card['customer_ref']}", GAMA_KEY) in fake_asaas.fake.seen
    assert billing.rpc.list_orders({"email": CARLA.email, "merchant_id": None, "session_id": "s"}) == []


@pytest.mark.parametrize("merchant_id, changes, field", [
    # Asaas binds a card to its customer: without it the card cannot be charged.
    ("gama-academia", {"customer_ref": None}, "customer_ref"),
    # The sandbox has no customers: a customer_ref is another processor's card.
    ("bazar-sandbox", {}, "customer_ref"),
    ("gama-academia", {"brand": "card"}, "brand"),
    ("gama-academia", {"exp": "5/35"}, "exp"),
])
def test_a_sale_card_the_account_cannot_take_is_refused_naming_the_field(billing, fake_asaas, on_asaas,
                                                                        merchant_id, changes, field):
    card = {**tokenized_at(fake_asaas, GAMA_KEY), **changes}

    with pytest.raises(ValidationFailed) as refused:
        billing.rpc.register_card(registered(merchant_id, card))

    assert list(refused.value.fields["payment"]["card"]) == [field]


def test_a_card_sent_both_ways_at_once_is_refused(billing):
    with pytest.raises(ValidationFailed) as refused:
        billing.rpc.register_card({"merchant_id": "bazar-sandbox", "email": CARLA.email, "payment": {
            "method": "credit_card", "token": "tok_x", "card": {"card_ref": "tok_x", "brand": "visa", "last4": "4242",
                                                               "exp": "05/2035"}}})
    assert list(refused.value.fields["payment"]) == ["token"]


def test_a_sandbox_sale_card_is_taken_in_either_shape(billing):
    token = billing.add_card("4242424242424242", buyer={"email": CARLA.email, "merchant_id": "bazar-sandbox"})
    card = {"card_ref": token, "brand": "visa", "last4": "4242", "exp": "08/2035"}

    nested = billing.rpc.record_order(order_with("bazar-sandbox", {"method": "credit_card", "card": card}))
    flat = billing.rpc.record_order(order_with("bazar-sandbox", {
        "method": "credit_card", "token": token, "card_brand": "visa", "card_last4": "4242", "card_exp": "08/2035"}))

    assert nested["payment"]["card_last4"] == flat["payment"]["card_last4"] == "4242"
    assert requests.get(billing.url("/healthz"), timeout=10).status_code == 200


def test_a_card_not_saved_at_the_merchants_mercado_pago_account_is_refused_naming_it(billing, fake_mercadopago):
    token = "APP_USR-1234567890123456-120705-0f7b1a2c3d4e5f60718293a4b5c6d7e8-123456789"
    billing.rpc.set_processor_account({
        "merchant_id": "delta-mp", "processor": "mercadopago", "environment": "sandbox", "api_key": token,
        "webhook_token": "b7e1c0a9d8f7e6d5c4b3a2910f8e7d6c", "notify": ["dona@delta.example.com"]})
    card = {"customer_ref": "1234567-customer-elsewhere", "card_ref": "9876543210", "brand": "visa", "last4": "4242",
            "exp": "05/2035"}

    with pytest.raises(ValidationFailed) as refused:
        billing.rpc.register_card(registered("delta-mp", card))

    assert list(refused.value.fields["payment"]["card"]) == ["card_ref"]
