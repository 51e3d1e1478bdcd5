"""Card entry on billing's own HTTP: ticket, form, tokenization, rate limits, and the
card applied through subscriptions — with no card number or CVV kept anywhere."""
import logging
import re
import uuid
from datetime import datetime, timedelta
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import MetaData

from services.billing.models import Base
from services.common import clock
from services.common.db import make_engine
from services.common.errors import Forbidden, NotFound, ValidationFailed
from support import secret_scan
from support.databases import every_stored_value

TEST_CARDS = ["4242424242424242", "4000000000000002", "4000000000000119", "4000000000009995"]
ANA = {"email": "ana@example.com", "merchant_id": "acme-cursos"}


def session_identity(buyer):
    return {**buyer, "session_id": "portal-session"}


@pytest.fixture
def ticket_for(billing):
    def issue(buyer=ANA, subscription_id=None):
        return billing.rpc.issue_card_entry_ticket({**buyer, "subscription_id": subscription_id or str(uuid.uuid4())})

    return issue


def post_card(billing, ticket, number, **fields):
    return requests.post(billing.url("/card"), data=billing.card_form(ticket, number, **fields), timeout=10)


def text_of(answer):
    return unescape(re.sub(r"\s+", " ", answer.text))


def test_a_ticket_opens_the_form_framed_only_by_the_portal(billing, ticket_for):
    issued = ticket_for()
    form_url = urlsplit(issued["form_url"])
    assert issued["form_url"].startswith(billing.config["BILLING_PUBLIC_URL"].rstrip("/") + "/card?ticket=")
    assert parse_qs(form_url.query)["ticket"] == [issued["ticket"]]
    assert datetime.fromisoformat(issued["expires_at"]) > clock.now()

    page = requests.get(billing.url(f"/card?{form_url.query}"), timeout=10)

    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    for field, label in [("number", "Número do cartão"), ("expiry", "Validade (MM/AA)"), ("security_code", "CVV"),
                         ("holder_name", "Nome impresso no cartão")]:
        assert f'<label for="{field}">{label}</label>' in page.text
        assert f'id="{field}" name="{field}"' in page.text
    assert '<form method="post" action="/card"' in page.text
    assert f'name="ticket" value="{issued["ticket"]}"' in page.text
    assert "<script" not in page.text
    policy = page.headers["Content-Security-Policy"]
    portal = urlsplit(billing.config["PORTAL_BASE_URL"])
    assert f"frame-ancestors {portal.scheme}://{portal.netloc}" in policy
    assert "form-action 'self'" in policy
    assert "X-Frame-Options" not in page.headers
    assert page.headers["Cache-Control"] == "no-store"
    assert requests.get(billing.url("/static/card.css"), timeout=10).status_code == 200


@pytest.mark.parametrize("query", ["", "?ticket=", "?ticket=made-up"])
def test_without_a_valid_ticket_there_is_no_form(billing, query):
    page = requests.get(billing.url(f"/card{query}"), timeout=10)
    assert page.status_code == 404
    assert 'name="number"' not in page.text
    assert "Link de cadastro de cartão inválido" in text_of(page)


def test_the_card_is_tokenized_bound_to_the_buyer_and_applied_to_the_subscription(billing, ticket_for, event_queue):
    events = event_queue("billing", "payment_method_added")
    subscription_id = str(uuid.uuid4())
    issued = ticket_for(subscription_id=subscription_id)

    page = post_card(billing, issued["ticket"], "4242 4242 4242 4242")

    assert page.status_code == 200
    assert "O cartão Visa final 4242 agora é a forma de pagamento desta assinatura." in text_of(page)
    portal = billing.config["PORTAL_BASE_URL"].rstrip("/")
    assert f'href="{portal}/assinaturas/{subscription_id}" target="_top"' in page.text
    [call] = billing.subscription_calls
    token = call["payment"]["card_token"]
    assert call == {
        "identity": {**ANA, "session_id": call["identity"]["session_id"]}, "subscription_id": subscription_id,
        "payment": {"method": "credit_card", "card_token": token}, "actor": "buyer",
    }
    assert token.startswith("tok_sbx_")
    card = billing.rpc.get_payment_method(session_identity(ANA), token)
    assert card == {"token": token, "brand": "visa", "last4": "4242", "exp": "08/2035"}
    assert billing.rpc.get_payment_method(session_identity({**ANA, "merchant_id": None}), token) == card
    for someone_else in [{"email": "bruno@example.com", "merchant_id": None}, {**ANA, "merchant_id": "beta-software"}]:
        with pytest.raises(NotFound):
            billing.rpc.get_payment_method(session_identity(someone_else), token)
    [envelope] = billing.received(events, 1)
    assert (envelope["type"], envelope["merchant_id"]) == ("payment_method_added", "acme-cursos")
    assert envelope["data"] == {"token": token, "brand": "visa", "last4": "4242", "exp": "08/2035",
                                "email": "ana@example.com"}


def test_a_ticket_takes_one_card_only(billing, ticket_for):
    issued = ticket_for()
    assert post_card(billing, issued["ticket"], "4242424242424242").status_code == 200

    again = post_card(billing, issued["ticket"], "5555555555554444")
    reopened = requests.get(billing.url(f"/card?ticket={issued['ticket']}"), timeout=10)

    assert again.status_code == reopened.status_code == 409
    assert "já foi usado" in text_of(again)
    assert len(billing.subscription_calls) == 1


def test_a_bad_number_is_named_and_never_shown_back(billing, ticket_for):
    issued = ticket_for()

    page = post_card(billing, issued["ticket"], "4242 4242 4242 4241", holder_name="ANA <SOUZA>")

    assert page.status_code == 400
    text = text_of(page)
    assert "Número do cartão: Confira o número do cartão." in text
    assert 'id="number" name="number" type="text" required autocomplete="cc-number"' in page.text
    assert 'aria-invalid="true" aria-describedby="number-error"' in page.text
    assert "4241" not in page.text and "7319" not in page.text
    assert 'value="ANA &lt;SOUZA&gt;"' in page.text
    assert billing.subscription_calls == []

    page = post_card(billing, issued["ticket"], "4242424242424242", expiry="01/20", security_code="12")
    assert page.status_code == 400
    assert "Validade (MM/AA): Este cartão está vencido." in text_of(page)
    assert "CVV: O CVV tem 3 ou 4 dígitos." in text_of(page)


def test_the_sixth_try_on_one_ticket_is_refused(billing, ticket_for):
    issued = ticket_for()
    for _ in range(5):
        assert post_card(billing, issued["ticket"], "4242424242424241").status_code == 400

    sixth = post_card(billing, issued["ticket"], "4242424242424242")

    assert sixth.status_code == 429
    assert "Muitas tentativas" in text_of(sixth)
    assert requests.get(billing.url(f"/card?ticket={issued['ticket']}"), timeout=10).status_code == 429
    assert billing.subscription_calls == []


@pytest.mark.parametrize("billing_overrides", [{"CARD_ENTRY_ATTEMPTS_PER_ADDRESS": 3}])
def test_one_address_gets_a_limited_number_of_tries_across_tickets(billing, ticket_for, billing_overrides):
    for _ in range(3):
        assert post_card(billing, ticket_for()["ticket"], "4000000000000000").status_code == 400

    refused = post_card(billing, ticket_for()["ticket"], "4242424242424242")

    assert refused.status_code == 429
    assert "a partir deste endereço" in text_of(refused)
    assert billing.subscription_calls == []


@pytest.mark.parametrize("billing_overrides", [{"CARD_ENTRY_ATTEMPTS_PER_ADDRESS": 2, "TRUSTED_PROXIES": "127.0.0.1"}])
def test_behind_a_trusted_proxy_each_client_address_counts_apart(billing, ticket_for, billing_overrides):
    def try_from(address):
        form = billing.card_form(ticket_for()["ticket"], "4000000000000000")
        return requests.post(billing.url("/card"), data=form, headers={"X-Forwarded-For": address}, timeout=10)

    assert [try_from("203.0.113.9").status_code for _ in range(3)] == [400, 400, 429]
    # A client cannot escape its count by claiming another address on the left.
    assert try_from("198.51.100.1, 203.0.113.9").status_code == 429
    assert try_from("198.51.100.7").status_code == 400


def test_an_expired_ticket_opens_nothing(billing, ticket_for, tmp_path, monkeypatch):
    issued = ticket_for()
    clock_file = tmp_path / "clock.json"
    monkeypatch.setenv("CLOCK_FILE", str(clock_file))
    clock.write_clock_file(clock_file, frozen_at=datetime.fromisoformat(issued["expires_at"]) + timedelta(seconds=1))

    assert requests.get(billing.url(f"/card?ticket={issued['ticket']}"), timeout=10).status_code == 404
    page = post_card(billing, issued["ticket"], "4242424242424242")
    assert page.status_code == 404
    assert "expirou" in text_of(page)


@pytest.mark.parametrize("refusal, status", [
    (Forbidden("Esta loja não permite trocar a forma de pagamento.", code="operation_disabled"), 403),
    (RuntimeError("subscriptions is broken"), 503),
])
def test_a_card_subscriptions_cannot_apply_stays_saved_and_the_buyer_is_told(billing, ticket_for, refusal, status):
    billing.make_subscriptions_refuse(refusal)
    issued = ticket_for()

    page = post_card(billing, issued["ticket"], "5555555555554444")

    assert page.status_code == status
    text = text_of(page)
    assert "Cartão salvo, mas não aplicado" in text
    assert "Seu cartão Mastercard final 4444 foi salvo, mas não foi possível defini-lo" in text
    assert "A forma de pagamento da assinatura continua a mesma." in text
    token = billing.subscription_calls[-1]["payment"]["card_token"]
    assert billing.rpc.get_payment_method(session_identity(ANA), token)["last4"] == "4444"
    assert post_card(billing, issued["ticket"], "5555555555554444").status_code == 409


def test_ticket_requests_are_checked(billing):
    with pytest.raises(ValidationFailed) as refused:
        billing.rpc.issue_card_entry_ticket({"email": "not-an-email", "merchant_id": "Acme!"})
    assert set(refused.value.fields) == {"email", "merchant_id", "subscription_id"}


HEX_WORD = re.compile(r"\b[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}\b|\b[0-9a-f]{32,}\b")


def test_no_card_number_or_cvv_is_kept_logged_or_sent(billing, ticket_for, event_queue, caplog):
    caplog.set_level(logging.DEBUG)
    events = event_queue("billing", "#")
    for number in TEST_CARDS:
        post_card(billing, ticket_for()["ticket"], number)
        post_card(billing, ticket_for()["ticket"], " ".join(re.findall("....", number)))
    spent = ticket_for()["ticket"]
    post_card(billing, spent, TEST_CARDS[0][:-1] + "0")  # a typo: Luhn-invalid
    post_card(billing, spent, TEST_CARDS[0], expiry="01/20")
    for call in billing.subscription_calls:
        for method in ("credit_card", "boleto", "pix"):
            billing.rpc.charge({
                "idempotency_key": f"renewal:{uuid.uuid4()}:2", **ANA, "subscription_id": str(uuid.uuid4()),
                "cycle_number": 2, "kind": "renewal", "product_name": "Curso", "amount_cents": 4990,
                "method": method, "payment_token": call["payment"]["card_token"] if method == "credit_card" else None,
            })

    secrets = TEST_CARDS + [TEST_CARDS[0][:-1] + "0"]
    stored = every_stored_value(billing.config["BILLING_DB_URL"])
    logged = caplog.text + "\n".join(record.getMessage() for record in caplog.records)
    sent = []
    while True:
        try:
            message = events.get(timeout=2)
        except Exception:
            break
        message.ack()
        sent.append(repr(message.payload))
    assert len(sent) >= len(TEST_CARDS)
    for where, values in [("database", stored), ("logs", [logged]), ("events", sent),
                          ("subscriptions", [repr(billing.subscription_calls)])]:
        for value in values:
            digits = value.replace(" ", "")
            assert not any(secret in digits for secret in secrets), f"a card number in the {where}"
            # Row ids and digests are hexadecimal words: "fc4c7319-…" holds no CVV.
            assert not re.search(r"(?<!\d)7319(?!\d)", HEX_WORD.sub("", value)), f"the CVV in the {where}"
            assert secret_scan.card_numbers_in(value) == [], f"a card-like number in the {where}"
    engine = make_engine(billing.config["BILLING_DB_URL"])
    metadata = MetaData()
    metadata.reflect(engine)
    engine.dispose()
    assert secret_scan.card_columns_of_metadata(metadata) == secret_scan.card_columns_of_metadata(Base.metadata) == []
