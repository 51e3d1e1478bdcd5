"""Merchants on Mercado Pago in a running billing service (devtools' fake Mercado Pago
standing in for it): the contract from a saved card to its renewals, pix, boleto and
signed notifications; a timeout reconciled; forged notifications refused; a merchant
moved from the sandbox keeping its history while new cards go to Mercado Pago."""
import hashlib
import hmac
import json
import time
import uuid

import pytest
import requests

from services.billing.credentials import new_key
from services.common.errors import ValidationFailed
from support.databases import every_stored_value
from support.refund_scenarios import refunds_settle_as_the_processor_confirms

TOKEN = "APP_USR-1234567890123456-120705-0f7b1a2c3d4e5f60718293a4b5c6d7e8-123456789"
SECRET = "b7e1c0a9d8f7e6d5c4b3a2910f8e7d6c5b4a39281706f5e4d3c2b1a0f9e8d7c6"
ANA = {"email": "ana@example.com", "merchant_id": "acme-cursos"}
BUYER = {"email": "ana@example.com", "name": "Ana Souza", "document": "529.982.247-25"}
ADDRESS = {"street": "Avenida Paulista", "number": "1000", "district": "Bela Vista", "city": "São Paulo",
           "state": "SP", "postal_code": "01310-100"}
VISA = "4235647728025682"


@pytest.fixture
def billing_overrides(fake_mercadopago, web_config):
    return {
        "BILLING_CREDENTIAL_KEYS": new_key(), "MERCADOPAGO_API_URL": fake_mercadopago.url,
        "MERCADOPAGO_TIMEOUT_SECONDS": 1, "BILLING_PUBLIC_URL": f"http://{web_config['WEB_SERVER_ADDRESS']}",
    }


def mercadopago_account(merchant_id="acme-cursos", **changes):
    return {"merchant_id": merchant_id, "processor": "mercadopago", "environment": "sandbox", "api_key": TOKEN,
            "webhook_token": SECRET, "notify": [f"dona@{merchant_id}.example.com"], **changes}


@pytest.fixture
def account(billing):
    """Acme on Mercado Pago; no notification is posted to billing unless a test sends it."""
    return billing.rpc.set_processor_account(mercadopago_account())


@pytest.fixture
def on_mercadopago(account, fake_mercadopago):
    """Acme on Mercado Pago, its notifications set to billing's callback with the secret."""
    fake_mercadopago.fake.notifications(TOKEN, account["callback_url"], SECRET)
    return account


def wait_for(check, timeout=10):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not in time"
        time.sleep(0.05)


def subscription_with_buyer(billing):
    """A subscription of Ana's at Acme whose checkout order named her CPF and address."""
    subscription_id = billing.subscription_of(ANA)
    billing.rpc.record_order({
        "merchant_id": "acme-cursos", "external_id": f"checkout-{uuid.uuid4()}", "subscription_id": subscription_id,
        "cycle_number": 1, "buyer": BUYER, "address": ADDRESS, "product_name": "Curso Completo",
        "amount_cents": 2990, "status": "paid", "payment": {"method": "pix", "pix_code": "000201"},
    })
    return subscription_id


def charge_request(subscription_id, method, token=None, cycle=2, **changes):
    return {
        "idempotency_key": f"renewal:{subscription_id}:{cycle}", "merchant_id": "acme-cursos", "email": ANA["email"],
        "subscription_id": subscription_id, "cycle_number": cycle, "kind": "renewal", "product_name": "Curso Completo",
        "amount_cents": 2990, "installments": 1, "method": method, "payment_token": token, **changes,
    }


def status_of(billing, key):
    return billing.rpc.orders_by_keys([key])[key]["status"]


def notification(billing, account, data_id, secret=SECRET, ts=None, request_id="req-1", signature=None):
    ts = ts if ts is not None else str(int(time.time() * 1000))
    manifest = f"id:{data_id};request-id:{request_id};ts:{ts};"
    v1 = signature or hmac.new(secret.encode(), manifest.encode(), hashlib.sha256).hexdigest()
    return requests.post(account["callback_url"], params={"data.id": data_id, "type": "payment"}, timeout=10,
                         json={"action": "payment.updated", "type": "payment", "data": {"id": data_id}},
                         headers={"x-signature": f"ts={ts},v1={v1}", "x-request-id": request_id})


def test_an_account_needs_its_token_and_secret_and_keeps_both_sealed(billing, fake_mercadopago):
    for missing in ("api_key", "webhook_token"):
        with pytest.raises(ValidationFailed) as refused:
            billing.rpc.set_processor_account(mercadopago_account(**{missing: None}))
        assert missing in refused.value.fields
    saved = billing.rpc.set_processor_account(mercadopago_account())
    assert saved["callback_url"] == billing.url(f"/callbacks/mercadopago/{saved['id']}")
    assert saved["api_key_hint"] == TOKEN[-4:] and TOKEN not in json.dumps(saved) and SECRET not in json.dumps(saved)
    stored = every_stored_value(billing.config["BILLING_DB_URL"])
    assert not any(TOKEN in value or SECRET in value for value in stored)
    # Nothing is registered at Mercado Pago: its panel holds the URL and issues the secret.
    assert fake_mercadopago.fake.seen == []


def test_saved_card_installments_renewal_pix_boleto_and_notifications(billing, fake_mercadopago, on_mercadopago,
                                                                       event_queue):
    paid_events = event_queue("billing", "order_paid")
    subscription_id = subscription_with_buyer(billing)
    # The buyer's card, typed once into billing's card form: saved to her Mercado Pago customer.
    token = billing.add_card(VISA, ANA, subscription_id)
    [customer] = fake_mercadopago.fake.account(TOKEN).customers.values()
    assert customer["email"] == ANA["email"] and [card["id"] for card in customer["cards"]] == [token]

    first = billing.rpc.charge(charge_request(subscription_id, "credit_card", token, cycle=1, kind="plan_change",
                                              installments=3, amount_cents=30000))
    renewal = billing.rpc.charge(charge_request(subscription_id, "credit_card", token, cycle=2))
    assert (first["status"], renewal["status"]) == ("paid", "paid")
    [installments] = fake_mercadopago.fake.payments_of(TOKEN, first["idempotency_key"])
    assert installments["installments"] == 3 and installments["transaction_amount"] == 300.0
    assert fake_mercadopago.fake.payments_of(TOKEN, renewal["idempotency_key"])[0]["payer"]["type"] == "customer"

    pix = billing.rpc.charge(charge_request(subscription_id, "pix", cycle=3))
    boleto = billing.rpc.charge(charge_request(subscription_id, "boleto", cycle=4))
    assert (pix["status"], boleto["status"]) == ("pending", "pending")
    assert pix["payment"]["pix_code"].startswith("000201") and len(boleto["payment"]["boleto_line"]) == 47

    [pix_payment] = fake_mercadopago.fake.payments_of(TOKEN, pix["idempotency_key"])
    fake_mercadopago.fake.pay(TOKEN, pix_payment["id"])
    wait_for(lambda: status_of(billing, pix["idempotency_key"]) == "paid")
    # Every notification the fake signed was taken (answered 200), created and updated alike.
    wait_for(lambda: len(fake_mercadopago.fake.deliveries) == 5)
    assert {delivery["status"] for delivery in fake_mercadopago.fake.deliveries} == {200}
    [updated] = [d for d in fake_mercadopago.fake.deliveries if d["action"] == "payment.updated"]
    fake_mercadopago.fake.resend(updated)
    assert fake_mercadopago.fake.deliveries[-1]["status"] == 200
    # The checkout's order (recorded paid, no key) and the three charges paid here: once each.
    keys = [envelope["data"]["idempotency_key"] for envelope in billing.received(paid_events, 4)]
    assert sorted(filter(None, keys)) == sorted([first["idempotency_key"], renewal["idempotency_key"],
                                                 pix["idempotency_key"]])
    assert status_of(billing, boleto["idempotency_key"]) == "pending"


def test_forged_or_stale_notifications_are_refused_and_change_nothing(billing, fake_mercadopago, account):
    pix = billing.rpc.charge(charge_request(subscription_with_buyer(billing), "pix"))
    [payment] = fake_mercadopago.fake.payments_of(TOKEN, pix["idempotency_key"])
    data_id = str(payment["id"])
    fake_mercadopago.fake.account(TOKEN).payments[payment["id"]]["status"] = "approved"  # not yet asked for
    for forged in (
        notification(billing, account, data_id, secret="not-the-secret"),
        notification(billing, account, data_id, signature="0" * 64),
        notification(billing, account, data_id, ts=str(int((time.time() - 6 * 24 * 3600) * 1000))),
        requests.post(account["callback_url"], params={"data.id": data_id, "type": "payment"}, timeout=10),
        notification(billing, {"callback_url": billing.url(f"/callbacks/mercadopago/{uuid.uuid4()}")}, data_id),
    ):
        assert forged.status_code == 401
    assert status_of(billing, pix["idempotency_key"]) == "pending"
    # Signed: the payment is fetched from Mercado Pago, which says it is paid now.
    assert notification(billing, account, data_id).status_code == 200
    assert status_of(billing, pix["idempotency_key"]) == "paid"
    # Signed but about nothing of ours, or not a payment: 200, nothing changes.
    assert notification(billing, account, "999999").status_code == 200


def test_a_notification_mercado_pago_cannot_be_asked_about_is_sent_again(billing, fake_mercadopago, account):
    fake_mercadopago.fake.script("GET", r"/v1/payments/\d+", 500)
    assert notification(billing, account, "1000000001").status_code == 503


def test_a_timeout_after_the_charge_is_reconciled_and_charged_once(billing, fake_mercadopago, account, event_queue):
    token = billing.add_card(VISA, ANA)
    events = event_queue("billing", "order_paid")
    fake_mercadopago.fake.script("POST", "/v1/payments", "timeout", after_work=True, delay=1.5)
    request = charge_request(str(uuid.uuid4()), "credit_card", token)

    assert billing.rpc.charge(request)["status"] == "pending_confirmation"
    assert billing.rpc.reconcile() == {"checked": 1, "settled": 1}

    assert status_of(billing, request["idempotency_key"]) == "paid"
    assert len(fake_mercadopago.fake.payments_of(TOKEN, request["idempotency_key"])) == 1
    [paid] = billing.received(events, 1)
    assert paid["data"]["settled_at_charge"] is False


def test_a_declined_renewal_is_refused(billing, fake_mercadopago, account):
    ticket = billing.rpc.issue_card_entry_ticket({**ANA, "subscription_id": str(uuid.uuid4())})
    page = requests.post(billing.url("/card"), data=billing.card_form(ticket["ticket"], VISA, holder_name="FUND"),
                         timeout=10)
    assert page.status_code == 200
    token = billing.subscription_calls[-1]["payment"]["card_token"]
    refused = billing.rpc.charge(charge_request(str(uuid.uuid4()), "credit_card", token))
    assert (refused["status"], refused["decline_reason"]) == ("refused", "insufficient_funds")


def test_a_merchant_moved_from_the_sandbox_keeps_its_history_and_new_cards_go_to_mercado_pago(
        billing, fake_mercadopago):
    subscription_id = subscription_with_buyer(billing)
    old_card = billing.add_card("4242 4242 4242 4242", ANA, subscription_id)
    before = [billing.rpc.charge(charge_request(subscription_id, "credit_card", old_card, cycle=2)),
              billing.rpc.charge(charge_request(subscription_id, "pix", cycle=3))]
    assert [order["status"] for order in before] == ["paid", "pending"]
    keys = [order["idempotency_key"] for order in before]

    billing.rpc.set_processor_account(mercadopago_account())

    # The orders made on the sandbox stay as they were, and the sandbox still settles them.
    assert billing.rpc.orders_by_keys(keys) == {order["idempotency_key"]: order for order in before}
    assert requests.post(billing.url(f"/sandbox/orders/{before[1]['code']}/pay"), timeout=10).status_code == 200
    assert status_of(billing, keys[1]) == "paid"
    # The card the sandbox issued is still charged there; nothing of it reaches Mercado Pago.
    assert billing.rpc.charge(charge_request(subscription_id, "credit_card", old_card, cycle=4))["status"] == "paid"
    assert billing.sandbox_charges(f"renewal:{subscription_id}:4") == 1
    assert fake_mercadopago.fake.seen == []
    # A new card is saved at Mercado Pago, and its charges and the merchant's pix go there.
    new_card = billing.add_card(VISA, ANA, subscription_id)
    assert not new_card.startswith("tok_sbx_")
    charged = billing.rpc.charge(charge_request(subscription_id, "credit_card", new_card, cycle=5))
    pix = billing.rpc.charge(charge_request(subscription_id, "pix", cycle=6))
    assert (charged["status"], pix["status"]) == ("paid", "pending")
    assert {payment["external_reference"] for payment in fake_mercadopago.fake.payments_of(TOKEN)} == {
        charged["idempotency_key"], pix["idempotency_key"]}


def test_refunds_at_mercado_pago_are_confirmed_by_its_notifications(billing, fake_mercadopago, on_mercadopago,
                                                                     event_queue):
    events = event_queue("billing", "order_refunded", "refund_failed")
    subscription_id = subscription_with_buyer(billing)
    token = billing.add_card(VISA, ANA, subscription_id)
    cycles = iter(range(2, 100))

    def paid_order():
        order = billing.rpc.charge(charge_request(subscription_id, "credit_card", token, cycle=next(cycles)))
        assert order["status"] == "paid"
        return order

    def bank(order, refund_key, approve):
        _payment_id, refund_id = fake_mercadopago.fake.account(TOKEN).refund_keys[refund_key]
        fake_mercadopago.fake.settle_refund(TOKEN, refund_id, approve)

    def refunds_at_processor(order):
        [payment] = fake_mercadopago.fake.payments_of(TOKEN, order["idempotency_key"])
        return len(payment["refunds"])

    refunds_settle_as_the_processor_confirms(billing, events, paid_order, bank, refunds_at_processor)
    # Every refund went with our refund's key as its X-Idempotency-Key.
    assert all(key.startswith("refund:") for _method, path, _token, key in fake_mercadopago.fake.seen
               if path.endswith("/refunds"))
