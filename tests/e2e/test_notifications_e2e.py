"""Notifications in the whole system: a merchant sets its webhook over the merchant
API, a buyer cancels in the portal, and both hear of it: the buyer by e-mail (read
from the SMTP sink), the merchant's server by a signed POST. A webhook never reaches
the portal itself: billing's sandbox cannot be made to pay a boleto through one."""
import json
import uuid
from datetime import timedelta

import pytest
import requests
from sqlalchemy import delete

from services.billing.models import PaymentMethod
from services.common import clock
from services.common.db import make_engine
from services.common.formatting import date, money
from services.common.rpc import ClusterRpcProxy
from services.subscriptions.domain import add_months
from support.notifications import Receiver, merchant_verifies, save_endpoints_unchecked
from support.portal_client import TIMEOUT, assert_json_error, log_in
from support.system import BROKER
from support.waiting import wait_until

MERCHANT_ID = "acme-cursos"


@pytest.fixture
def rpc(system):
    with ClusterRpcProxy({"AMQP_URI": f"{BROKER}/{system.vhost}"}, timeout=30) as cluster:
        yield cluster


@pytest.fixture
def merchant_api(system, rpc):
    """A session of the merchant's backend, with an API key of its own."""
    key = rpc.auth.create_api_key(MERCHANT_ID)["key"]
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {key}"
    yield session
    # Leave no endpoint behind for the other modules' events.
    session.put(f"{system.gateway_url}/api/v1/merchant/webhooks", json={"endpoints": []}, timeout=TIMEOUT)


@pytest.fixture
def receiver():
    running = Receiver((200,))
    yield running
    running.close()


def new_buyer(rpc, started=timedelta(days=3)):
    """A buyer of Acme's monthly plan, so the demo buyers stay as other modules expect."""
    email = f"e2e-notify-{uuid.uuid4().hex[:8]}@example.com"
    start = clock.now() - started
    rpc.subscriptions.upsert_contact({"merchant_id": MERCHANT_ID, "email": email, "name": "Nina Teste"})
    subscription = rpc.subscriptions.create_subscription({
        "merchant_id": MERCHANT_ID, "external_id": f"e2e-{uuid.uuid4().hex[:10]}", "offer_id": "acme-basico-mensal",
        "email": email, "status": "active", "cycle_number": 1, "cycle_start": start.isoformat(),
        "cycle_end": add_months(start, 1).isoformat(),
        "payment": {"method": "credit_card", "card_brand": "visa", "card_last4": "4242", "card_exp": "08/2030",
                    "token": f"tok_e2e_{uuid.uuid4().hex[:12]}"},
    })
    return email, subscription


def the_email(system, email, subject_start, what):
    """The e-mails to `email` in the sink whose subject starts so, once there are any."""
    def found():
        answer = requests.get(f"{system.mail_url}/api/messages", params={"to": email}, timeout=TIMEOUT).json()
        return [message for message in answer if message["subject"].startswith(subject_start)]

    return wait_until(found, timeout=30, message=what)


def test_a_cancellation_reaches_the_buyer_by_e_mail_and_the_merchant_by_a_signed_webhook(
        system, rpc, merchant_api, receiver):
    webhooks = f"{system.gateway_url}/api/v1/merchant/webhooks"
    assert_json_error(requests.get(webhooks, timeout=TIMEOUT), 401)
    put = merchant_api.put(webhooks, timeout=TIMEOUT, json={
        "endpoints": [{"url": receiver.url, "event_types": ["subscription_cancellation_scheduled"]}],
    })
    assert put.status_code == 200, put.text
    shown = merchant_api.get(webhooks, timeout=TIMEOUT).json()
    secret = shown["secret"]
    assert secret and secret == put.json()["secret"]
    assert [endpoint["url"] for endpoint in shown["endpoints"]] == [receiver.url]

    email, subscription = new_buyer(rpc)
    buyer, _, started = log_in(system, email)
    canceled = buyer.post(
        f"{system.gateway_url}/api/v1/me/subscriptions/{subscription['id']}/cancel",
        json={"reason": "not_using"}, headers={"X-CSRF-Token": started.json()["csrf_token"]}, timeout=TIMEOUT,
    )
    assert canceled.status_code == 200, canceled.text

    [message] = the_email(system, email, "Cancelamento agendado", "the cancellation e-mail")
    assert message["subject"] == f"Cancelamento agendado: {subscription['product_name']}"
    assert f"Você continua com acesso até {date(subscription['cycle']['end'])}" in message["text"]
    assert "Acme Cursos" in message["text"] and "suporte@acme.example.com" in message["text"]
    assert f"{system.gateway_url}/assinaturas/{subscription['id']}" in message["links"]

    [request] = wait_until(lambda: [
        request for request in receiver.requests
        if json.loads(request["body"])["data"].get("subscription_id") == subscription["id"]
    ], timeout=30, message="the merchant's webhook")
    body = json.loads(request["body"])
    assert body["type"] == request["headers"]["X-Portal-Event-Type"] == "subscription_cancellation_scheduled"
    assert body["merchant_id"] == MERCHANT_ID and body["data"]["email"] == email
    assert request["headers"]["X-Portal-Event-Id"] == body["event_id"]
    assert merchant_verifies(secret, request["headers"]["X-Portal-Signature"], request["body"])
    assert not merchant_verifies("whsec_not-this-merchants", request["headers"]["X-Portal-Signature"], request["body"])

    [delivery] = wait_until(lambda: [
        delivery for delivery in rpc.notifications.list_webhook_deliveries(merchant_id=MERCHANT_ID)
        if delivery["event_id"] == body["event_id"] and delivery["status"] == "delivered"
    ], message="the delivery logged")
    assert [attempt["status_code"] for attempt in delivery["log"]] == [200]


def test_a_renewal_billing_cannot_charge_is_past_due_in_one_pass_with_the_e_mail_and_the_webhook(
        system, rpc, merchant_api, receiver):
    """A card billing does not know for the buyer (a subscription taken in before billing
    kept intake's cards): never retried in silence."""
    put = merchant_api.put(f"{system.gateway_url}/api/v1/merchant/webhooks", timeout=TIMEOUT, json={
        "endpoints": [{"url": receiver.url, "event_types": ["subscription_past_due"]}],
    })
    assert put.status_code == 200, put.text
    email, subscription = new_buyer(rpc, started=timedelta(days=40))
    engine = make_engine(system.database_urls["billing"])
    try:
        with engine.begin() as connection:
            connection.execute(delete(PaymentMethod.__table__).where(PaymentMethod.__table__.c.email == email))
    finally:
        engine.dispose()

    rpc.subscriptions.run_renewals()
    buyer = {"email": email, "merchant_id": MERCHANT_ID, "session_id": "e2e"}
    assert rpc.subscriptions.get_subscription(buyer, subscription["id"])["status"] == "past_due"

    [message] = the_email(system, email, "", "the past-due e-mail")
    assert message["subject"] == f"Pagamento pendente: assinatura de {subscription['product_name']}"
    assert "Motivo: a forma de pagamento cadastrada não pode ser usada" in message["text"]
    assert f"{system.gateway_url}/assinaturas/{subscription['id']}/forma-de-pagamento" in message["links"]
    [request] = wait_until(lambda: [
        request for request in receiver.requests
        if json.loads(request["body"])["data"].get("subscription_id") == subscription["id"]
    ], timeout=30, message="the merchant's webhook")
    body = json.loads(request["body"])
    assert (body["type"], body["data"]["decline_reason"], body["data"]["order_code"]) == (
        "subscription_past_due", "payment_method_unusable", None)


def boleto_to_pay(rpc, email, subscription):
    """The renewal boleto billing issued for `subscription`, waiting to be paid."""
    order = rpc.billing.charge({
        "idempotency_key": f"renewal:{subscription['id']}:2", "merchant_id": MERCHANT_ID, "email": email,
        "subscription_id": subscription["id"], "cycle_number": 2, "kind": "renewal",
        "product_name": "Curso", "amount_cents": 4990, "method": "boleto",
        "due_at": (clock.now() + timedelta(days=3)).isoformat(),
    })
    assert order["status"] == "pending"
    return order


def test_a_renewal_boleto_reaches_its_buyer_once_when_issued(system, rpc):
    email, subscription = new_buyer(rpc)
    order = boleto_to_pay(rpc, email, subscription)
    assert boleto_to_pay(rpc, email, subscription)["code"] == order["code"]  # asked again: the same boleto

    [message] = the_email(system, email, "Seu boleto", "the boleto e-mail")
    assert message["subject"] == f"Seu boleto de {money(4990)}: pedido {order['code']}"
    assert f"{system.gateway_url}/pedidos/{order['code']}" in message["links"]
    assert "Pague até" in message["text"]


def order_status(rpc, email, code):
    return rpc.billing.get_order({"email": email, "merchant_id": MERCHANT_ID, "session_id": "e2e"}, code)["status"]


def test_a_merchant_cannot_save_a_webhook_to_the_portals_own_addresses(system, rpc, merchant_api):
    email, subscription = new_buyer(rpc)
    code = boleto_to_pay(rpc, email, subscription)["code"]
    webhooks = f"{system.gateway_url}/api/v1/merchant/webhooks"

    put = merchant_api.put(webhooks, timeout=TIMEOUT, json={"endpoints": [
        {"url": f"http://127.0.0.1:{system.billing_port}/sandbox/orders/{code}/pay"},
        {"url": f"http://[::1]:{system.billing_port}/sandbox/orders/{code}/pay"},
        {"url": f"http://localhost:{system.gateway_port}/api/v1/merchant/webhooks"},
        {"url": "http://169.254.169.254/latest/meta-data/"},
    ]})

    fields = assert_json_error(put, 400, "validation_error")["fields"]
    assert fields == {"endpoints": {
        "0": {"url": [f"address not allowed: 127.0.0.1, port {system.billing_port} is the portal's own"]},
        "1": {"url": [f"address not allowed: ::1, port {system.billing_port} is the portal's own"]},
        "2": {"url": [f"address not allowed: localhost resolves to 127.0.0.1, port {system.gateway_port} "
                      "is the portal's own"]},
        "3": {"url": ["address not allowed: 169.254.169.254"]},
    }}
    assert order_status(rpc, email, code) == "pending"


def test_an_endpoint_saved_before_these_rules_cannot_make_billings_sandbox_pay_a_boleto(system, rpc, merchant_api):
    email, subscription = new_buyer(rpc)
    code = boleto_to_pay(rpc, email, subscription)["code"]
    pay = f"http://127.0.0.1:{system.billing_port}/sandbox/orders/{code}/pay"
    save_endpoints_unchecked(system.database_urls["notifications"], MERCHANT_ID, pay)

    # Any event of the merchant's calls the endpoint: here, a second order.
    rpc.billing.charge({
        "idempotency_key": f"plan_change:{uuid.uuid4()}", "merchant_id": MERCHANT_ID, "email": email,
        "subscription_id": subscription["id"], "cycle_number": 1, "kind": "plan_change",
        "product_name": "Curso", "amount_cents": 1000, "method": "pix",
    })

    refused = wait_until(lambda: [
        delivery for delivery in rpc.notifications.list_webhook_deliveries(merchant_id=MERCHANT_ID)
        if delivery["url"] == pay and delivery["status"] == "failed"
    ], timeout=30, message="the delivery refused")
    assert {delivery["last_error"] for delivery in refused} == {
        f"address not allowed: 127.0.0.1, port {system.billing_port} is the portal's own"}
    assert order_status(rpc, email, code) == "pending"
