"""The Asaas adapter against devtools' fake Asaas, which checks each request as Asaas
documents it: the processor interface as billing relies on it, and what Asaas adds
(customers by CPF/CNPJ, installments, no idempotency header)."""
from datetime import date

import pytest
import requests

from services.billing.processors import Card, CardHolder, CardRefused, ProcessorUnavailable, boleto, brcode, make_processor
from support.ports import free_port

KEY = "$aact_hmlg_000MzkwODA2MWY2OGM3MWRlMDU2NWM3MzJlNzZmNGZhZGY6OmFkYXB0ZXI"
HOLDER = CardHolder(name="Ana Souza", email="ana@example.com", document="529.982.247-25", postal_code="01310-100",
                    address_number="100", phone="11987654321")
PAYER = {"email": "ana@example.com", "name": "Ana Souza", "document": "529.982.247-25", "phone": None, "address": None}
BUYER_IP = "203.0.113.7"
APPROVED, REFUSED = "4444444444444444", "5184019740373151"


def adapter(fake_asaas, api_key=KEY, seconds=2):
    return make_processor(
        {"processor": "asaas", "ASAAS_SANDBOX_URL": fake_asaas.url, "ASAAS_TIMEOUT_SECONDS": seconds},
        credentials={"api_key": api_key}, environment="sandbox",
    )


@pytest.fixture
def asaas(fake_asaas):
    processor = adapter(fake_asaas)
    yield processor
    processor.close()


def card(number=APPROVED):
    return Card(number=number, exp_month=5, exp_year=2035, security_code="123", holder_name="ANA SOUZA")


def test_tokenize_charge_in_installments_boleto_and_pix(asaas, fake_asaas):
    token = asaas.tokenize(card(), HOLDER, BUYER_IP)
    assert (token.brand, token.last4, token.exp_month, token.exp_year) == ("visa", "4444", 5, 2035)
    assert token.customer_ref.startswith("cus_")

    charged = asaas.charge_card("plan_change:q1", token.token, 10000, 3, token.customer_ref)
    assert (charged.status, charged.amount_cents) == ("paid", 10000)
    installments = fake_asaas.fake.payments_of(KEY, "plan_change:q1")
    assert [payment["installmentNumber"] for payment in installments] == [1, 2, 3]
    assert sum(round(payment["value"] * 100) for payment in installments) == 10000
    # The same key again: the same charge, nothing new at Asaas.
    assert asaas.charge_card("plan_change:q1", token.token, 10000, 3, token.customer_ref) == charged
    assert len(fake_asaas.fake.payments_of(KEY, "plan_change:q1")) == 3

    issued = asaas.create_boleto("renewal:s:2", 2990, date(2030, 1, 15), "acme-cursos", PAYER)
    assert (issued.status, issued.amount_cents, issued.boleto_due_date) == ("pending", 2990, date(2030, 1, 15))
    assert boleto.line_is_valid(issued.boleto_line) and len(issued.boleto_barcode) == 44
    assert issued.boleto_pdf_url.startswith("https://")

    pix = asaas.create_pix("renewal:s:3", 4990, "acme-cursos", PAYER)
    assert pix.status == "pending" and brcode.crc_is_valid(pix.pix_code) and pix.pix_qr_png
    # One customer for the buyer's CPF, found before each charge instead of created again.
    assert len(fake_asaas.fake.account(KEY).customers) == 1

    fake_asaas.fake.confirm(KEY, pix.reference)
    assert asaas.find_charge("renewal:s:3").status == "paid"
    assert asaas.find_charge("renewal:s:4") is None
    assert asaas.payment_key(pix.reference) == "renewal:s:3"


def test_a_declined_card_is_refused_and_nothing_is_kept_at_asaas(asaas, fake_asaas):
    token = asaas.tokenize(card(REFUSED), HOLDER, BUYER_IP)
    refused = asaas.charge_card("renewal:s:2", token.token, 2990, 1, token.customer_ref)
    assert (refused.status, refused.decline_reason) == ("refused", "card_declined")
    assert fake_asaas.fake.payments_of(KEY) == []
    assert asaas.find_charge("renewal:s:2") is None


def test_a_token_without_its_customer_cannot_be_charged(asaas, fake_asaas):
    refused = asaas.charge_card("renewal:s:2", "tok_sbx_imported", 2990, 1, None)
    assert (refused.status, refused.decline_reason) == ("refused", "payment_method_unusable")
    assert fake_asaas.fake.seen == []


def test_tokenization_needs_the_holder_and_a_valid_cpf_and_asaas_enabling_it(asaas, fake_asaas):
    with pytest.raises(CardRefused):
        asaas.tokenize(card(), None, BUYER_IP)
    with pytest.raises(CardRefused) as invalid_cpf:
        asaas.tokenize(card(), CardHolder(**{**HOLDER.__dict__, "document": "111.222.333-44"}), BUYER_IP)
    assert invalid_cpf.value.field == "document"
    fake_asaas.fake.account(KEY).tokenization_enabled = False
    with pytest.raises(CardRefused, match="tokenização"):
        asaas.tokenize(card(), HOLDER, BUYER_IP)


@pytest.mark.parametrize("status", [429, 500])
def test_a_create_that_failed_is_looked_up_then_sent_once_more(asaas, fake_asaas, status):
    token = asaas.tokenize(card(), HOLDER, BUYER_IP)
    fake_asaas.fake.script("POST", "/v3/payments", status)
    assert asaas.charge_card("renewal:s:2", token.token, 2990, 1, token.customer_ref).status == "paid"
    assert len(fake_asaas.fake.payments_of(KEY, "renewal:s:2")) == 1


def test_a_create_that_worked_but_answered_500_is_found_by_its_key_not_made_again(asaas, fake_asaas):
    token = asaas.tokenize(card(), HOLDER, BUYER_IP)
    fake_asaas.fake.script("POST", "/v3/payments", 500, after_work=True)
    assert asaas.charge_card("renewal:s:2", token.token, 2990, 1, token.customer_ref).status == "paid"
    assert len(fake_asaas.fake.payments_of(KEY, "renewal:s:2")) == 1


def test_a_timeout_after_the_charge_is_unknown_then_found_and_never_charged_twice(fake_asaas):
    asaas = adapter(fake_asaas, seconds=1)
    token = asaas.tokenize(card(), HOLDER, BUYER_IP)
    fake_asaas.fake.script("POST", "/v3/payments", "timeout", after_work=True, delay=1.5)
    with pytest.raises(ProcessorUnavailable):
        asaas.charge_card("renewal:s:2", token.token, 2990, 1, token.customer_ref)
    found = asaas.find_charge("renewal:s:2")
    assert found.status == "paid"
    # What the reconciler does next: the key is known, so nothing is sent again.
    assert asaas.charge_card("renewal:s:2", token.token, 2990, 1, token.customer_ref) == found
    assert len(fake_asaas.fake.payments_of(KEY, "renewal:s:2")) == 1
    asaas.close()


def test_every_request_carries_the_key_and_user_agent_and_the_fake_checks_them(asaas, fake_asaas):
    asaas.create_pix("renewal:s:3", 4990, "acme-cursos", PAYER)
    assert fake_asaas.fake.keys_seen() == {KEY}
    assert all(key == KEY for _method, _path, key in fake_asaas.fake.seen)
    for headers, status, code in (
        ({"User-Agent": "test"}, 401, "invalid_access_token"),
        ({"access_token": "pk_live_wrong", "User-Agent": "test"}, 401, "invalid_access_token"),
        ({"access_token": KEY, "User-Agent": ""}, 400, "invalid_user_agent"),
    ):
        answer = requests.get(f"{fake_asaas.url}/payments", headers=headers, timeout=5)
        assert (answer.status_code, answer.json()["errors"][0]["code"]) == (status, code)
    answer = requests.post(f"{fake_asaas.url}/customers", json={"name": "Ana"},
                           headers={"access_token": KEY, "User-Agent": "test"}, timeout=5)
    assert answer.status_code == 400 and "cpfCnpj" in answer.json()["errors"][0]["description"]


def test_an_asaas_that_refuses_the_key_or_does_not_answer_is_unavailable(fake_asaas):
    wrong = adapter(fake_asaas, api_key="not-an-asaas-key")
    with pytest.raises(ProcessorUnavailable):
        wrong.find_charge("renewal:s:2")
    wrong.close()
    nobody = make_processor({"processor": "asaas", "ASAAS_SANDBOX_URL": f"http://127.0.0.1:{free_port()}/v3"},
                            credentials={"api_key": KEY}, environment="sandbox")
    with pytest.raises(ProcessorUnavailable):
        nobody.create_pix("renewal:s:3", 4990, "acme-cursos", PAYER)
    nobody.close()
