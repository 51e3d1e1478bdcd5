"""Billing's card form for a merchant on Asaas (Gama Academia, through devtools' fake
Asaas): it asks for the holder's CPF/CNPJ, e-mail, CEP, address number and phone,
prefilled from the buyer the checkout sent, checks them, and the card it saves is an
Asaas card of the buyer's Asaas customer, which the next charge uses."""
import re
import uuid
from html import unescape
from urllib.parse import urlsplit

import pytest
import requests

from services.billing.models import PaymentMethod
from services.common.db import make_engine
from sqlalchemy import select, text
from support.asaas_accounts import GAMA_KEY, asaas_overrides, put_asaas_account

GAMA = "gama-academia"
CARLA = {"email": "carla@example.com", "merchant_id": GAMA}
# What the checkout sent with Carla's sale.
CARLA_BUYER = {"email": "carla@example.com", "name": "Carla Dias", "document": "529.982.247-25",
               "phone": "(11) 98765-4321"}
CARLA_ADDRESS = {"street": "Avenida Paulista", "number": "1578", "city": "São Paulo", "state": "SP",
                 "postal_code": "01310-200"}
HOLDER_FIELDS = {"document": "CPF ou CNPJ do titular", "email": "E-mail do titular", "postal_code": "CEP",
                 "address_number": "Número do endereço", "phone": "Telefone com DDD"}


@pytest.fixture
def billing_overrides(fake_asaas, web_config):
    return asaas_overrides(fake_asaas, web_config)


@pytest.fixture
def gama(billing):
    """Gama Academia on Asaas, and a subscription of Carla's there whose checkout order
    named her CPF, phone and address."""
    put_asaas_account(billing, GAMA, GAMA_KEY)
    subscription_id = billing.subscription_of(CARLA)
    billing.rpc.record_order({
        "merchant_id": GAMA, "external_id": f"checkout-{uuid.uuid4()}", "subscription_id": subscription_id,
        "cycle_number": 1, "buyer": CARLA_BUYER, "address": CARLA_ADDRESS, "product_name": "Plano Mensal",
        "amount_cents": 9990, "status": "paid", "payment": {"method": "pix", "pix_code": "000201"},
    })
    return subscription_id


def form_of(billing, buyer, subscription_id):
    issued = billing.rpc.issue_card_entry_ticket({**buyer, "subscription_id": subscription_id})
    return issued["ticket"], requests.get(billing.url(f"/card?{urlsplit(issued['form_url']).query}"), timeout=10)


def value_of(page, name):
    found = re.search(rf'<input id="{name}" name="{name}"([^>]*)>', page.text)
    assert found, f"no field {name}"
    value = re.search(r' value="([^"]*)"', found.group(1))
    return unescape(value.group(1)) if value else ""


def holder_form(ticket, **changes):
    return {"ticket": ticket, "number": "4242 4242 4242 4242", "expiry": "05/35", "security_code": "7319",
            "holder_name": "CARLA DIAS", "document": "529.982.247-25", "email": "carla@example.com",
            "postal_code": "01310-200", "address_number": "1578", "phone": "(11) 98765-4321", **changes}


def test_the_form_for_an_asaas_merchant_asks_for_the_holder_prefilled_from_the_checkout(billing, gama):
    ticket, page = form_of(billing, CARLA, gama)

    assert page.status_code == 200
    for name, label in HOLDER_FIELDS.items():
        assert f'<label for="{name}">{label}</label>' in page.text
    assert [value_of(page, name) for name in ("holder_name", *HOLDER_FIELDS)] == [
        "Carla Dias", "529.982.247-25", "carla@example.com", "01310-200", "1578", "(11) 98765-4321"]
    assert value_of(page, "number") == "" and "<script" not in page.text

    # A merchant on the sandbox: the card only, as before.
    _, sandbox_page = form_of(billing, {"email": "ana@example.com", "merchant_id": "acme-cursos"}, str(uuid.uuid4()))
    assert 'name="number"' in sandbox_page.text
    assert not any(f'name="{name}"' in sandbox_page.text for name in HOLDER_FIELDS)


def test_what_the_merchant_knows_of_the_holder_comes_with_the_ticket_and_goes_with_its_use(billing, gama, fake_asaas):
    """The contact subscriptions passes with the ticket fills the form first (a field it
    lacks comes from the checkout's order), and a used ticket keeps none of it."""
    known = {"name": "Carla M. Dias", "document": "111.444.777-35", "phone": "(21) 3232-1010",
             "postal_code": "22041-001", "address_number": None}
    issued = billing.rpc.issue_card_entry_ticket({**CARLA, "subscription_id": gama, "holder": known})
    ticket = issued["ticket"]
    page = requests.get(billing.url(f"/card?{urlsplit(issued['form_url']).query}"), timeout=10)
    assert [value_of(page, name) for name in ("holder_name", *HOLDER_FIELDS)] == [
        "Carla M. Dias", "111.444.777-35", "carla@example.com", "22041-001", "1578", "(21) 3232-1010"]

    saved = requests.post(billing.url("/card"), data=holder_form(ticket), timeout=10)
    assert saved.status_code == 200, saved.text
    engine = make_engine(billing.config["BILLING_DB_URL"])
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SELECT holder FROM card_entry_tickets")).scalars().all() == [None]
    finally:
        engine.dispose()


def test_a_card_entered_for_gama_is_an_asaas_card_the_next_charge_uses(billing, gama, fake_asaas):
    ticket, _ = form_of(billing, CARLA, gama)

    saved = requests.post(billing.url("/card"), data=holder_form(ticket), timeout=10)

    assert saved.status_code == 200, saved.text
    assert "Cartão salvo" in saved.text
    token = billing.subscription_calls[-1]["payment"]["card_token"]
    asaas = fake_asaas.fake.account(GAMA_KEY)
    # Tokenized at Gama's Asaas for Carla's customer there (found by CPF, made once),
    # with her details as Asaas wants them and the IP she typed the card from.
    [customer] = asaas.customers.values()
    assert customer["cpfCnpj"] == "52998224725"
    issued = asaas.tokens[token]
    assert issued["customer"] == customer["id"] and issued["remoteIp"] == "127.0.0.1"
    assert issued["holder"] == {
        "name": "CARLA DIAS", "email": "carla@example.com", "cpfCnpj": "52998224725", "postalCode": "01310200",
        "addressNumber": "1578", "addressComplement": None, "phone": "11987654321", "mobilePhone": None}
    engine = make_engine(billing.config["BILLING_DB_URL"])
    with engine.connect() as connection:
        card = connection.execute(select(PaymentMethod).filter_by(token=token)).one()
    engine.dispose()
    assert (card.customer_ref, card.brand, card.last4, card.exp) == (customer["id"], "visa", "4242", "05/2035")
    assert card.processor_account_id is not None

    order = billing.rpc.charge({
        "idempotency_key": f"renewal:{gama}:2", "merchant_id": GAMA, "email": CARLA["email"],
        "subscription_id": gama, "cycle_number": 2, "kind": "renewal", "product_name": "Plano Mensal",
        "amount_cents": 9990, "installments": 1, "method": "credit_card", "payment_token": token,
    })

    assert order["status"] == "paid"
    [payment] = fake_asaas.fake.payments_of(GAMA_KEY, f"renewal:{gama}:2")
    assert payment["customer"] == customer["id"] and payment["creditCard"]["creditCardToken"] == token


@pytest.mark.parametrize("changes, field, message", [
    ({"document": "529.982.247-24"}, "document", "CPF ou CNPJ inválido"),
    ({"document": "111.111.111-11"}, "document", "CPF ou CNPJ inválido"),
    ({"document": ""}, "document", "Informe o CPF ou CNPJ do titular"),
    ({"postal_code": "1310-200"}, "postal_code", "CEP com 8 dígitos"),
    ({"address_number": " "}, "address_number", "número do endereço"),
    ({"phone": "98765-4321"}, "phone", "telefone com DDD"),
    ({"email": "carla@"}, "email", "e-mail válido"),
])
def test_a_bad_holder_field_is_refused_by_name_before_asaas_is_asked(billing, gama, fake_asaas, changes, field,
                                                                      message):
    ticket, _ = form_of(billing, CARLA, gama)

    refused = requests.post(billing.url("/card"), data=holder_form(ticket, **changes), timeout=10)

    assert refused.status_code == 400
    text = unescape(re.sub(r"\s+", " ", refused.text))
    assert f"{HOLDER_FIELDS[field]}: " in text and message in text
    assert f'id="{field}-error"' in refused.text and 'aria-invalid="true"' in refused.text
    # Asked again, with what was typed (but the card's number and CVV) filled back in.
    assert value_of(refused, "number") == "" and "7319" not in refused.text
    assert value_of(refused, "address_number" if field != "address_number" else "postal_code")
    assert fake_asaas.fake.account(GAMA_KEY).tokens == {}
    assert billing.subscription_calls == []


def test_in_english_the_form_and_its_errors_name_the_fields_in_english(billing, gama, fake_asaas):
    issued = billing.rpc.issue_card_entry_ticket({**CARLA, "subscription_id": gama})
    page = requests.get(billing.url(f"/card?{urlsplit(issued['form_url']).query}&lang=en"), timeout=10)

    assert '<html lang="en">' in page.text and '<label for="document">Cardholder\'s CPF or CNPJ</label>' in unescape(
        page.text)
    assert '<legend>Cardholder details</legend>' in page.text and 'name="lang" value="en"' in page.text

    # The language travels with the form, whatever the browser prefers.
    refused = requests.post(billing.url("/card"), data={**holder_form(issued["ticket"], document="529.982.247-24"),
                                                        "lang": "en"},
                            headers={"Accept-Language": "pt-BR"}, timeout=10)

    text = unescape(re.sub(r"\s+", " ", refused.text))
    assert refused.status_code == 400 and "Check the card details." in text
    assert "Cardholder's CPF or CNPJ: Invalid CPF or CNPJ: check the digits." in text
    # The browser's own language, without the switch.
    browser_english = requests.get(billing.url(f"/card?{urlsplit(issued['form_url']).query}"), timeout=10,
                                   headers={"Accept-Language": "en-US,en;q=0.9"})
    assert "Save card" in browser_english.text
