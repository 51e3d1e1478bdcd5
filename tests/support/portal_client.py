"""A client of the running portal, as an outside caller uses it: HTTP and the mail sink."""
import time
import uuid
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import requests

from services.common import clock
from services.subscriptions.domain import add_months

TIMEOUT = 10
CARD = {"method": "credit_card", "card_brand": "visa", "card_last4": "4242", "card_exp": "08/2030"}


def inbox_ids(system, address):
    """Ids of the e-mails to `address` in the sink now: take them before asking for one."""
    messages = requests.get(f"{system.mail_url}/api/messages", params={"to": address}, timeout=TIMEOUT).json()
    return {message["id"] for message in messages}


def login_email(system, address, before, wait=20):
    """The first e-mail to `address` whose id is not in `before`. (The portal answers
    before it sends, so "the newest e-mail" may still be an older one.)"""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        messages = requests.get(f"{system.mail_url}/api/messages", params={"to": address}, timeout=TIMEOUT).json()
        # Other e-mails (a payment confirmation, say) may arrive meanwhile: only a login link counts.
        fresh = [message for message in messages if message["id"] not in before and _has_login_link(message, system)]
        if fresh:
            return fresh[-1]
        time.sleep(0.2)
    raise AssertionError(f"no new e-mail reached {address} in {wait}s")


def _has_login_link(message, system):
    return any(link.startswith(system.gateway_url) and "token=" in link for link in message["links"])


def token_from(message, system):
    link = next(link for link in message["links"] if link.startswith(system.gateway_url) and "token=" in link)
    return parse_qs(urlparse(link).query)["token"][0]


def log_in(system, address):
    """A client logged in as `address` the way a browser is: the login request's nonce
    cookie, then the session cookie, and the CSRF token on every request after."""
    before = inbox_ids(system, address)
    session = requests.Session()
    answer = session.post(f"{system.gateway_url}/api/v1/auth/login-links", json={"email": address}, timeout=TIMEOUT)
    assert answer.status_code == 202
    token = token_from(login_email(system, address, before), system)
    started = session.post(f"{system.gateway_url}/api/v1/auth/sessions", json={"token": token}, timeout=TIMEOUT)
    assert started.status_code == 201, started.text
    session.headers["X-CSRF-Token"] = started.json()["csrf_token"]
    return session, token, started


def assert_json_error(answer, status, code=None):
    assert answer.status_code == status, answer.text
    assert answer.headers["Content-Type"].startswith("application/json")
    error = answer.json()["error"]
    assert set(error) == {"code", "message", "fields"}
    assert "Traceback" not in answer.text
    if code:
        assert error["code"] == code
    return error


def bearer_get(system, token):
    return requests.get(
        f"{system.gateway_url}/api/v1/me/orders", headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT,
    )


def register_subscription(rpc, email, offer_id, periodicity_months, price_cents, started=timedelta(days=10)):
    """What a checkout does for a new subscription at Acme: the subscription and its
    paid first order, by card, through `rpc` (an entered ClusterRpcProxy). Its id."""
    return register_subscriptions(rpc, email, 1, offer_id, periodicity_months, price_cents, started)[0]


def register_subscriptions(rpc, email, count, offer_id, periodicity_months, price_cents, started=timedelta(days=10)):
    """`count` of them for one buyer, their calls sent together (a standalone proxy
    reads its replies from one green thread only): their ids."""
    start = clock.now() - started
    payments = [{**CARD, "token": f"tok_e2e_{uuid.uuid4().hex[:12]}"} for _ in range(count)]
    external_ids = [f"e2e-{uuid.uuid4().hex[:10]}" for _ in range(count)]
    created = [rpc.subscriptions.create_subscription.call_async({
        "merchant_id": "acme-cursos", "external_id": external_id, "offer_id": offer_id, "email": email,
        "status": "active", "cycle_number": 1, "cycle_start": start.isoformat(),
        "cycle_end": add_months(start, periodicity_months).isoformat(), "payment": payment,
    }) for external_id, payment in zip(external_ids, payments)]
    ids = [reply.result()["id"] for reply in created]
    recorded = [rpc.billing.record_order.call_async({
        "merchant_id": "acme-cursos", "external_id": f"{external_id}-c1",
        "buyer": {"email": email, "name": "Carla Teste"}, "product_name": "Curso Completo",
        "offer_id": offer_id, "subscription_id": subscription_id, "cycle_number": 1,
        "amount_cents": price_cents, "status": "paid", "payment": payment, "created_at": start.isoformat(),
    }) for external_id, payment, subscription_id in zip(external_ids, payments, ids)]
    for reply in recorded:
        reply.result()
    return ids
