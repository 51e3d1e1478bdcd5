"""The Mercado Pago adapter against devtools' fake Mercado Pago, which checks each
request as Mercado Pago documents it: the processor interface as billing relies on it,
and what Mercado Pago adds (single-use card tokens, cards saved to customers and
charged again without their security code, the idempotency header)."""
from datetime import date

import pytest
import requests

from services.billing.processors import Card, CardHolder, CardRefused, ProcessorUnavailable, boleto, brcode, make_processor
from support.ports import free_port

TOKEN = "APP_USR-1234567890123456-120705-0f7b1a2c3d4e5f60718293a4b5c6d7e8-123456789"
HOLDER = CardHolder(name="Ana Souza", email="ana@example.com", document="529.982.247-25", postal_code="01310-100",
                    address_number="100", phone="11987654321")
ADDRESS = {"street": "Avenida Paulista", "number": "1000", "complement": None, "district": "Bela Vista",
           "city": "São Paulo", "state": "SP", "postal_code": "01310-100", "country": "BR"}
PAYER = {"email": "ana@example.com", "name": "Ana Souza", "document": "529.982.247-25", "phone": None,
         "address": ADDRESS}
MASTERCARD = "5031433215406351"


def adapter(fake_mercadopago, access_token=TOKEN, seconds=2):
    return make_processor(
        {"processor": "mercadopago", "MERCADOPAGO_API_URL": fake_mercadopago.url, "MERCADOPAGO_TIMEOUT_SECONDS": seconds},
        credentials={"api_key": access_token, "webhook_token": "secret"}, environment="sandbox",
    )


@pytest.fixture
def mercadopago(fake_mercadopago):
    processor = adapter(fake_mercadopago)
    yield processor
    processor.close()


def card(holder_name="APRO", number=MASTERCARD):
    return Card(number=number, exp_month=11, exp_year=2030, security_code="123", holder_name=holder_name)


def test_save_card_charge_in_installments_then_again_without_its_code_then_pix_and_boleto(mercadopago, fake_mercadopago):
    saved = mercadopago.tokenize(card(), HOLDER)
    assert (saved.brand, saved.last4, saved.exp_month, saved.exp_year) == ("mastercard", "6351", 11, 2030)
    [customer] = fake_mercadopago.fake.account(TOKEN).customers.values()
    assert saved.customer_ref == customer["id"] and [c["id"] for c in customer["cards"]] == [saved.token]

    first = mercadopago.charge_card("checkout:q1", saved.token, 30000, 3, saved.customer_ref)
    assert (first.status, first.amount_cents) == ("paid", 30000)
    [payment] = fake_mercadopago.fake.payments_of(TOKEN, "checkout:q1")
    assert payment["installments"] == 3 and payment["payer"]["type"] == "customer"
    # The same key again: the same charge, nothing new at Mercado Pago.
    assert mercadopago.charge_card("checkout:q1", saved.token, 30000, 3, saved.customer_ref) == first
    assert len(fake_mercadopago.fake.payments_of(TOKEN)) == 1

    renewal = mercadopago.charge_card("renewal:s:2", saved.token, 10000, 1, saved.customer_ref)
    assert (renewal.status, renewal.amount_cents) == ("paid", 10000)
    # Each charge paid with a token of its own, made from the saved card without its code.
    tokens = fake_mercadopago.fake.account(TOKEN).tokens.values()
    assert [(token["card_id"], token["with_security_code"], token["used"]) for token in tokens] == [
        (None, True, True), (saved.token, False, True), (saved.token, False, True)]

    pix = mercadopago.create_pix("renewal:s:3", 4990, "acme-cursos", PAYER)
    assert pix.status == "pending" and brcode.crc_is_valid(pix.pix_code) and pix.pix_qr_png
    issued = mercadopago.create_boleto("renewal:s:4", 2990, date(2030, 1, 15), "acme-cursos", PAYER)
    assert (issued.status, issued.amount_cents, issued.boleto_due_date) == ("pending", 2990, date(2030, 1, 15))
    assert boleto.line_is_valid(issued.boleto_line) and len(issued.boleto_barcode) == 44
    assert issued.boleto_pdf_url.startswith("https://")
    [boleto_payment] = fake_mercadopago.fake.payments_of(TOKEN, "renewal:s:4")
    assert boleto_payment["payer"]["identification"] == {"type": "CPF", "number": "52998224725"}

    fake_mercadopago.fake.pay(TOKEN, pix.reference)
    assert mercadopago.find_charge("renewal:s:3").status == "paid"
    assert mercadopago.find_charge("renewal:s:5") is None
    assert mercadopago.payment_key(pix.reference) == "renewal:s:3"
    # Every payment and refund went with our key as its X-Idempotency-Key.
    assert {key for method, path, _token, key in fake_mercadopago.fake.seen if path == "/v1/payments"} == {
        "checkout:q1", "renewal:s:2", "renewal:s:3", "renewal:s:4"}
    asked = mercadopago.refund("renewal:s:2", "refund:r1", 1000)
    assert (asked.status, asked.amount_cents) == ("pending", 1000)
    assert mercadopago.refund("renewal:s:2", "refund:r1", 1000) == asked
    fake_mercadopago.fake.settle_refund(TOKEN, asked.reference)
    assert mercadopago.find_refund("renewal:s:2", "refund:r1", asked.reference).status == "done"
    assert mercadopago.find_refund("renewal:s:2", "refund:r1") is None


def test_a_boleto_needs_the_payers_document_and_address(mercadopago, fake_mercadopago):
    for payer, reason in (({**PAYER, "document": None}, "payer_document_missing"),
                          ({**PAYER, "address": {**ADDRESS, "district": None}}, "payer_address_missing"),
                          ({**PAYER, "address": None}, "payer_address_missing")):
        refused = mercadopago.create_boleto("renewal:s:2", 2990, date(2030, 1, 15), "acme-cursos", payer)
        assert (refused.status, refused.decline_reason) == ("refused", reason)
    assert fake_mercadopago.fake.seen == []


@pytest.mark.parametrize("holder_name, reason", [("FUND", "insufficient_funds"), ("OTHE", "card_declined")])
def test_a_declined_card_is_refused(mercadopago, fake_mercadopago, holder_name, reason):
    saved = mercadopago.tokenize(card(holder_name), HOLDER)
    refused = mercadopago.charge_card("renewal:s:2", saved.token, 2990, 1, saved.customer_ref)
    assert (refused.status, refused.decline_reason) == ("refused", reason)
    [payment] = fake_mercadopago.fake.payments_of(TOKEN, "renewal:s:2")
    assert payment["status_detail"].startswith("cc_rejected_")
    assert mercadopago.find_charge("renewal:s:2") == refused


def test_a_used_card_token_is_refused_with_3003(mercadopago, fake_mercadopago):
    made = requests.post(f"{fake_mercadopago.url}/v1/card_tokens", timeout=5, headers={"Authorization": f"Bearer {TOKEN}"},
                         json={"card_number": MASTERCARD, "security_code": "123", "expiration_month": 11,
                               "expiration_year": 2030, "cardholder": {"name": "APRO"}}).json()
    mercadopago.save_card(made["id"], "ana@example.com")
    with pytest.raises(CardRefused, match="Invalid card_token_id"):
        mercadopago.save_card(made["id"], "ana@example.com")
    answer = requests.post(f"{fake_mercadopago.url}/v1/payments", timeout=5, json={
        "transaction_amount": 10, "token": made["id"], "installments": 1, "payment_method_id": "master",
        "payer": {"email": "ana@example.com"}}, headers={"Authorization": f"Bearer {TOKEN}", "X-Idempotency-Key": "k1"})
    assert answer.status_code == 400 and answer.json()["cause"][0]["code"] == 3003


def test_an_account_not_enabled_for_payments_without_cvv_refuses_renewals(mercadopago, fake_mercadopago):
    saved = mercadopago.tokenize(card(), HOLDER)
    fake_mercadopago.fake.account(TOKEN).automatic_payments = False
    refused = mercadopago.charge_card("renewal:s:2", saved.token, 2990, 1, saved.customer_ref)
    assert (refused.status, refused.decline_reason) == ("refused", "recurring_charges_disabled")


def test_a_card_not_saved_at_mercado_pago_cannot_be_charged(mercadopago, fake_mercadopago):
    refused = mercadopago.charge_card("renewal:s:2", "tok_sbx_imported", 2990, 1, None)
    assert (refused.status, refused.decline_reason) == ("refused", "payment_method_unusable")
    assert fake_mercadopago.fake.seen == []
    saved = mercadopago.tokenize(card(), HOLDER)
    gone = mercadopago.charge_card("renewal:s:2", "999", 2990, 1, saved.customer_ref)
    assert (gone.status, gone.decline_reason) == ("refused", "payment_method_unusable")


@pytest.mark.parametrize("status", [429, 500])
def test_a_create_that_failed_is_looked_up_then_sent_once_more(mercadopago, fake_mercadopago, status):
    saved = mercadopago.tokenize(card(), HOLDER)
    fake_mercadopago.fake.script("POST", "/v1/payments", status)
    assert mercadopago.charge_card("renewal:s:2", saved.token, 2990, 1, saved.customer_ref).status == "paid"
    assert len(fake_mercadopago.fake.payments_of(TOKEN, "renewal:s:2")) == 1
    searches = [path for method, path, _token, _key in fake_mercadopago.fake.seen if path == "/v1/payments/search"]
    assert len(searches) == 2  # before the create, and before the retry


def test_a_timeout_after_the_charge_is_unknown_then_found_and_never_charged_twice(fake_mercadopago):
    mercadopago = adapter(fake_mercadopago, seconds=1)
    saved = mercadopago.tokenize(card(), HOLDER)
    fake_mercadopago.fake.script("POST", "/v1/payments", "timeout", after_work=True, delay=1.5)
    with pytest.raises(ProcessorUnavailable):
        mercadopago.charge_card("renewal:s:2", saved.token, 2990, 1, saved.customer_ref)
    found = mercadopago.find_charge("renewal:s:2")
    assert found.status == "paid"
    # What the reconciler does next: the key is known, so nothing is sent again.
    assert mercadopago.charge_card("renewal:s:2", saved.token, 2990, 1, saved.customer_ref) == found
    assert len(fake_mercadopago.fake.payments_of(TOKEN, "renewal:s:2")) == 1
    mercadopago.close()


def test_a_refund_whose_answer_was_lost_is_answered_when_asked_again_under_its_key(mercadopago, fake_mercadopago):
    saved = mercadopago.tokenize(card(), HOLDER)
    charged = mercadopago.charge_card("renewal:s:2", saved.token, 2990, 1, saved.customer_ref)
    fake_mercadopago.fake.script("POST", f"/v1/payments/{charged.reference}/refunds", 500, after_work=True)
    with pytest.raises(ProcessorUnavailable):
        mercadopago.refund("renewal:s:2", "refund:r1", 2990)
    _payment_id, refund_id = fake_mercadopago.fake.account(TOKEN).refund_keys["refund:r1"]
    fake_mercadopago.fake.settle_refund(TOKEN, refund_id)
    assert mercadopago.find_charge("renewal:s:2").status == "refunded"

    # What the reconciler does for a refund it has no id of: ask again under its key.
    again = mercadopago.refund("renewal:s:2", "refund:r1", 2990)

    assert (again.status, again.reference, again.amount_cents) == ("done", str(refund_id), 2990)
    [payment] = fake_mercadopago.fake.payments_of(TOKEN, "renewal:s:2")
    assert len(payment["refunds"]) == 1


def test_the_fake_checks_the_bearer_token_the_idempotency_key_and_required_fields(fake_mercadopago):
    for headers in ({}, {"Authorization": "Bearer wrong-token-123456789"}, {"Authorization": TOKEN}):
        answer = requests.get(f"{fake_mercadopago.url}/v1/payments/search", headers=headers, timeout=5)
        assert (answer.status_code, answer.json()["error"]) == (401, "unauthorized")
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    pix = {"transaction_amount": 10, "payment_method_id": "pix", "payer": {"email": "ana@example.com"}}
    answer = requests.post(f"{fake_mercadopago.url}/v1/payments", json=pix, headers=bearer, timeout=5)
    assert answer.status_code == 400 and "X-Idempotency-Key" in answer.json()["message"]
    answer = requests.post(f"{fake_mercadopago.url}/v1/payments", json={**pix, "payer": {}}, timeout=5,
                           headers={**bearer, "X-Idempotency-Key": "k1"})
    assert answer.status_code == 400 and answer.json()["message"] == "payer.email is required"


def test_a_mercado_pago_that_refuses_the_token_or_does_not_answer_is_unavailable(fake_mercadopago):
    wrong = adapter(fake_mercadopago, access_token="not-a-mercado-pago-token")
    with pytest.raises(ProcessorUnavailable):
        wrong.find_charge("renewal:s:2")
    wrong.close()
    nobody = make_processor({"processor": "mercadopago", "MERCADOPAGO_API_URL": f"http://127.0.0.1:{free_port()}"},
                            credentials={"api_key": TOKEN}, environment="sandbox")
    with pytest.raises(ProcessorUnavailable):
        nobody.create_pix("renewal:s:3", 4990, "acme-cursos", PAYER)
    nobody.close()
