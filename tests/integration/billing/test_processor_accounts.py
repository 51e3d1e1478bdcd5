"""Merchants' processor accounts in a running billing service: set by the operator
with sealed credentials, re-sealed on key rotation, and charges, renewals, the
reconciler and Asaas's webhooks going through the account of each merchant (devtools'
fake Asaas standing in for Asaas)."""
import json
import uuid
from queue import Empty

import pytest
import requests
from cryptography.fernet import InvalidToken
from sqlalchemy import select, update

from services.billing.credentials import CredentialBox, new_key
from services.billing.models import ProcessorAccount
from services.billing.processors import CardHolder, Card, make_processor
from services.common.db import make_engine
from services.common.errors import ValidationFailed
from support.databases import every_stored_value
from support.refund_scenarios import refunds_settle_as_the_processor_confirms
from support.waiting import wait_until

KEY_A = "$aact_hmlg_000MzkwODA2MWY2OGM3MWRlMDU2NWM3MzJlNzZmNGZhZGY6OmFjbWUtY3Vyc29z"
KEY_B = "$aact_hmlg_000MzkwODA2MWY2OGM3MWRlMDU2NWM3MzJlNzZmNGZhZGY6OmdhbWEtYWNhZGVtaWE"
OLD_KEY, NEW_KEY = new_key(), new_key()
ANA = {"email": "ana@example.com", "name": "Ana Souza", "document": "529.982.247-25"}
HOLDER = CardHolder(name="Ana Souza", email="ana@example.com", document="529.982.247-25", postal_code="01310-100",
                    address_number="100", phone="11987654321")


@pytest.fixture
def billing_overrides(fake_asaas, web_config):
    return {
        "BILLING_CREDENTIAL_KEYS": f"{NEW_KEY},{OLD_KEY}", "ASAAS_SANDBOX_URL": fake_asaas.url,
        "ASAAS_TIMEOUT_SECONDS": 1, "BILLING_PUBLIC_URL": f"http://{web_config['WEB_SERVER_ADDRESS']}",
    }


def asaas_account(merchant_id, api_key, **changes):
    return {"merchant_id": merchant_id, "processor": "asaas", "environment": "sandbox", "api_key": api_key,
            "webhook_token": None, "notify": [f"dona@{merchant_id}.example.com"], **changes}


def drained(queue, quiet_seconds=1):
    """Every envelope on `queue` until it stays empty for `quiet_seconds`."""
    envelopes = []
    while True:
        try:
            message = queue.get(timeout=quiet_seconds)
        except Empty:
            return envelopes
        message.ack()
        envelopes.append(message.payload)


def subscription_with_buyer(billing, merchant_id):
    """A subscription of Ana's at `merchant_id`, whose checkout order named her CPF."""
    subscription_id = billing.subscription_of({"email": ANA["email"], "merchant_id": merchant_id})
    billing.rpc.record_order({
        "merchant_id": merchant_id, "external_id": f"checkout-{uuid.uuid4()}", "subscription_id": subscription_id,
        "cycle_number": 1, "buyer": ANA, "product_name": "Curso Completo", "amount_cents": 2990, "status": "paid",
        "payment": {"method": "pix", "pix_code": "000201"},
    })
    return subscription_id


def charge_request(merchant_id, subscription_id, method, token=None, cycle=2, **changes):
    return {
        "idempotency_key": f"renewal:{subscription_id}:{cycle}", "merchant_id": merchant_id, "email": ANA["email"],
        "subscription_id": subscription_id, "cycle_number": cycle, "kind": "renewal", "product_name": "Curso Completo",
        "amount_cents": 2990, "installments": 1, "method": method, "payment_token": token, **changes,
    }


def card_at_asaas(billing, fake_asaas, merchant_id, api_key):
    """What a checkout on Asaas does: tokenize there, then hand billing the card refs."""
    asaas = make_processor({"processor": "asaas", "ASAAS_SANDBOX_URL": fake_asaas.url},
                           credentials={"api_key": api_key}, environment="sandbox")
    token = asaas.tokenize(Card("4444444444444444", 5, 2035, "123", "ANA SOUZA"), HOLDER, "203.0.113.7")
    asaas.close()
    billing.rpc.register_card({"merchant_id": merchant_id, "email": ANA["email"], "payment": {
        "method": "credit_card", "token": token.token, "customer_ref": token.customer_ref,
        "card_brand": token.brand, "card_last4": token.last4, "card_exp": "05/2035"}})
    return token.token


def test_an_account_is_kept_sealed_and_shown_by_its_last_four_only(billing, event_queue, fake_asaas):
    events = event_queue("billing", "processor_account_changed")
    token = "TokenDoWebhookDaAcmeComMaisDeTrintaEDoisCaracteres"
    saved = billing.rpc.set_processor_account(asaas_account("acme-cursos", KEY_A, webhook_token=token))

    assert saved["api_key_hint"] == KEY_A[-4:] and saved["processor"] == "asaas"
    assert saved["callback_url"] == billing.url(f"/callbacks/asaas/{saved['id']}")
    assert KEY_A not in json.dumps(saved) and token not in json.dumps(saved)
    assert billing.rpc.list_processor_accounts("acme-cursos") == [saved]
    stored = every_stored_value(billing.config["BILLING_DB_URL"])
    assert not any(KEY_A in value or token in value or KEY_A[11:] in value for value in stored)
    [envelope] = billing.received(events, 1)
    assert envelope["data"] == {"account_id": saved["id"], "processor": "asaas", "environment": "sandbox",
                                "api_key_hint": KEY_A[-4:], "change": "created",
                                "notify": ["dona@acme-cursos.example.com"]}
    # An operator's token is the operator's to register with Asaas: billing registers none.
    assert fake_asaas.fake.account(KEY_A).webhooks == []

    again = billing.rpc.set_processor_account(asaas_account("acme-cursos", KEY_B, webhook_token=token))
    assert again["id"] == saved["id"] and billing.received(events, 1)[0]["data"]["change"] == "updated"


def test_without_a_token_billing_makes_one_and_registers_its_callback_with_asaas(billing, fake_asaas):
    saved = billing.rpc.set_processor_account(asaas_account("acme-cursos", KEY_A))
    [hook] = fake_asaas.fake.account(KEY_A).webhooks
    assert hook["url"] == saved["callback_url"] and 32 <= len(hook["authToken"]) <= 255
    assert hook["authToken"] not in json.dumps(saved)
    # Set again for the same Asaas account: the registered webhook stays the only one.
    billing.rpc.set_processor_account(asaas_account("acme-cursos", KEY_A, notify=["socio@acme.example.com"]))
    assert fake_asaas.fake.account(KEY_A).webhooks == [hook]


@pytest.mark.parametrize("changes, field", [
    ({"api_key": None}, "api_key"),
    ({"processor": "sandbox"}, "api_key"),
    ({"environment": "staging"}, "environment"),
    ({"notify": []}, "notify"),
    ({"notify": ["not-an-address"]}, "notify"),
])
def test_an_account_missing_what_it_needs_is_refused_by_field(billing, changes, field):
    with pytest.raises(ValidationFailed) as refused:
        billing.rpc.set_processor_account({**asaas_account("acme-cursos", KEY_A), **changes})
    assert field in refused.value.fields
    assert billing.rpc.list_processor_accounts() == []


def test_rotation_seals_every_account_with_the_first_key(billing):
    saved = billing.rpc.set_processor_account(asaas_account("acme-cursos", KEY_A, webhook_token="x" * 3 + "Ab" * 20))
    engine = make_engine(billing.config["BILLING_DB_URL"])
    credentials = {"api_key": KEY_A, "webhook_token": "Ab" * 20}
    # As sealed before the new key came first.
    with engine.begin() as connection:
        connection.execute(update(ProcessorAccount).values(sealed_credentials=CredentialBox(OLD_KEY).seal(credentials)))

    assert billing.rpc.rotate_credential_keys() == {"resealed": 1}

    with engine.connect() as connection:
        sealed = connection.execute(select(ProcessorAccount.sealed_credentials)).scalar_one()
    engine.dispose()
    assert CredentialBox(NEW_KEY).open(sealed) == credentials
    with pytest.raises(InvalidToken):
        CredentialBox(OLD_KEY).open(sealed)
    assert saved["id"]


def test_each_merchant_is_charged_through_its_own_account(billing, fake_asaas):
    for merchant_id, api_key in (("acme-cursos", KEY_A), ("gama-academia", KEY_B)):
        billing.rpc.set_processor_account(asaas_account(merchant_id, api_key, webhook_token="Zy" * 20))
    charged = {}
    for merchant_id, api_key in (("acme-cursos", KEY_A), ("gama-academia", KEY_B)):
        token = card_at_asaas(billing, fake_asaas, merchant_id, api_key)
        card_subscription = billing.subscription_of({"email": ANA["email"], "merchant_id": merchant_id})
        card_order = billing.rpc.charge(charge_request(merchant_id, card_subscription, "credit_card", token))
        boleto_order = billing.rpc.charge(
            charge_request(merchant_id, subscription_with_buyer(billing, merchant_id), "boleto"))
        assert (card_order["status"], boleto_order["status"]) == ("paid", "pending")
        assert len(boleto_order["payment"]["boleto_line"]) == 47
        charged[api_key] = {card_order["idempotency_key"], boleto_order["idempotency_key"]}
    for api_key, keys in charged.items():
        assert {payment["externalReference"] for payment in fake_asaas.fake.payments_of(api_key)} == keys
    # A merchant with no account is charged by the installation's processor, as before.
    other = billing.rpc.charge(charge_request("beta-software", str(uuid.uuid4()), "pix"))
    assert other["status"] == "pending" and other["payment"]["pix_code"].startswith("000201")
    assert fake_asaas.fake.keys_seen() == {KEY_A, KEY_B}


def test_a_timeout_after_the_charge_is_reconciled_and_charged_once(billing, fake_asaas, event_queue):
    billing.rpc.set_processor_account(asaas_account("acme-cursos", KEY_A, webhook_token="Zy" * 20))
    token = card_at_asaas(billing, fake_asaas, "acme-cursos", KEY_A)
    events = event_queue("billing", "order_paid")
    fake_asaas.fake.script("POST", "/v3/payments", "timeout", after_work=True, delay=1.5)
    request = charge_request("acme-cursos", str(uuid.uuid4()), "credit_card", token)

    assert billing.rpc.charge(request)["status"] == "pending_confirmation"
    assert billing.rpc.reconcile() == {"checked": 1, "settled": 1}

    assert billing.rpc.orders_by_keys([request["idempotency_key"]])[request["idempotency_key"]]["status"] == "paid"
    assert len(fake_asaas.fake.payments_of(KEY_A, request["idempotency_key"])) == 1
    [paid] = billing.received(events, 1)
    assert paid["data"]["settled_at_charge"] is False


def test_asaas_webhooks_settle_the_order_once_and_forged_ones_change_nothing(billing, fake_asaas, event_queue):
    saved = billing.rpc.set_processor_account(asaas_account("acme-cursos", KEY_A))
    [hook] = fake_asaas.fake.account(KEY_A).webhooks
    events = event_queue("billing", "order_paid")
    request = charge_request("acme-cursos", subscription_with_buyer(billing, "acme-cursos"), "pix")
    key = request["idempotency_key"]
    assert billing.rpc.charge(request)["status"] == "pending"
    [payment] = fake_asaas.fake.payments_of(KEY_A, key)

    def status():
        return billing.rpc.orders_by_keys([key])[key]["status"]

    def callback(token, body):
        return requests.post(saved["callback_url"], data=json.dumps(body), timeout=10,
                             headers={"asaas-access-token": token, "Content-Type": "application/json"})

    lie = {"id": "evt_forged", "event": "PAYMENT_RECEIVED", "dateCreated": "2026-12-07 10:00:00",
           "payment": {**payment, "status": "RECEIVED"}}
    for token in ("wrong-token-" + "x" * 30, ""):
        assert callback(token, lie).status_code == 401
    assert requests.post(billing.url(f"/callbacks/asaas/{uuid.uuid4()}"), json=lie, timeout=10,
                         headers={"asaas-access-token": hook["authToken"]}).status_code == 401
    # Authenticated, but the body is not believed: Asaas says the payment is still pending.
    assert callback(hook["authToken"], lie).status_code == 200
    assert status() == "pending"

    fake_asaas.fake.confirm(KEY_A, payment["id"])
    wait_until(lambda: status() == "paid", message="the order paid")
    [received] = [delivery for delivery in fake_asaas.fake.deliveries if delivery["event"] == "PAYMENT_RECEIVED"]
    fake_asaas.fake.resend(received["event_id"])
    wait_until(lambda: len([d for d in fake_asaas.fake.deliveries if d["event"] == "PAYMENT_RECEIVED"]) == 2,
               message="the event sent twice")
    assert {delivery["status"] for delivery in fake_asaas.fake.deliveries} == {200}
    assert [envelope["data"]["status"] for envelope in drained(events) if envelope["data"]["idempotency_key"] == key] == [
        "paid"]
    # Anything else Asaas posts for the account is answered 200 and changes nothing.
    assert callback(hook["authToken"], {"event": "SUBSCRIPTION_CREATED"}).status_code == 200
    assert callback(hook["authToken"], {"event": "PAYMENT_RECEIVED", "payment": {"id": "pay_unknown"}}).status_code == 200
    assert status() == "paid"


def test_an_event_asaas_cannot_be_asked_about_is_sent_again_and_junk_is_answered_200(billing, fake_asaas):
    saved = billing.rpc.set_processor_account(asaas_account("acme-cursos", KEY_A))
    [hook] = fake_asaas.fake.account(KEY_A).webhooks
    headers = {"asaas-access-token": hook["authToken"], "Content-Type": "application/json"}
    fake_asaas.fake.script("GET", r"/v3/payments/pay_\w+", 500)
    event = {"id": "evt_1", "event": "PAYMENT_RECEIVED", "payment": {"id": "pay_000001abcdef"}}
    assert requests.post(saved["callback_url"], json=event, headers=headers, timeout=10).status_code == 503
    assert requests.post(saved["callback_url"], data=b"not json", headers=headers, timeout=10).status_code == 200


def test_refunds_at_asaas_are_confirmed_by_its_webhooks(billing, fake_asaas, event_queue):
    events = event_queue("billing", "order_refunded", "refund_failed")
    # No token given: billing makes one and registers its callback for the account's events.
    billing.rpc.set_processor_account(asaas_account("acme-cursos", KEY_A))
    subscription_id = subscription_with_buyer(billing, "acme-cursos")
    token = card_at_asaas(billing, fake_asaas, "acme-cursos", KEY_A)
    cycles = iter(range(2, 100))

    def paid_order():
        order = billing.rpc.charge(charge_request("acme-cursos", subscription_id, "credit_card", token,
                                                  cycle=next(cycles)))
        assert order["status"] == "paid"
        return order

    def payment(order):
        [found] = fake_asaas.fake.payments_of(KEY_A, order["idempotency_key"])
        return found

    def bank(order, refund_key, done):
        fake_asaas.fake.settle_refund(KEY_A, payment(order)["id"], refund_key, done)

    refunds_settle_as_the_processor_confirms(billing, events, paid_order, bank,
                                             lambda order: len(payment(order)["refunds"]))
