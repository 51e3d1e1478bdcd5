"""The merchant's side of a running portal, as a merchant's backend and checkout use it:
an operator creates the merchant and its offers and hands out an API key (`portalctl`);
the checkout then feeds sales in through the merchant API."""
import uuid
from datetime import timedelta

import requests
from services.common.rpc import ClusterRpcProxy

from services.common import clock
from services.subscriptions.domain import add_months
from support.login_flow import create_api_key
from support.portal_client import TIMEOUT
from support.system import BROKER

CARD = {"method": "credit_card", "card_brand": "visa", "card_last4": "4242", "card_exp": "08/2031"}
# (offer id, price in cents, months per cycle)
OFFERS = (("mensal", 3990, 1), ("anual", 39900, 12))


def new_merchant(system, **settings):
    """A merchant of its own with the two OFFERS, as an operator creates it: (id, API key)."""
    merchant_id = f"loja-{uuid.uuid4().hex[:8]}"
    with ClusterRpcProxy({"AMQP_URI": f"{BROKER}/{system.vhost}"}, timeout=30) as rpc:
        rpc.subscriptions.upsert_merchant({"id": merchant_id, "name": "Loja de Teste", **settings})
        for offer_id, price, months in OFFERS:
            rpc.subscriptions.upsert_offer({
                "merchant_id": merchant_id, "id": offer_id, "product_name": "Clube", "plan_name": offer_id,
                "price_cents": price, "periodicity_months": months, "max_installments": months,
            })
    return merchant_id, create_api_key(system, merchant_id)


def merchant_call(system, method, path, key, body=None, headers=None):
    """`path` under /api/v1/merchant, with `key` as the Bearer credential (none if None)."""
    return requests.request(
        method, f"{system.gateway_url}/api/v1/merchant{path}", json=body, timeout=TIMEOUT,
        headers={**({"Authorization": f"Bearer {key}"} if key else {}), **(headers or {})},
    )


def card(email):
    """The processor's token of the card a buyer used (a token belongs to one buyer)."""
    return {**CARD, "token": f"tok_checkout_{email.split('@')[0]}"}


def subscription_sale(email, external_id=None, offer_id="mensal", started=timedelta(days=3)):
    """A sale of `offer_id` whose first cycle began `started` ago (it may have ended)."""
    start = clock.now() - started
    months = next(months for offer, _price, months in OFFERS if offer == offer_id)
    return {
        "external_id": external_id or f"sub-{uuid.uuid4().hex[:8]}", "offer_id": offer_id,
        "customer": {"email": email, "name": "Elisa Prado", "document": "529.982.247-25",
                     "phone": "+55 11 90000-0000", "address": None},
        "status": "active", "cycle_number": 1, "cycle_start": start.isoformat(),
        "cycle_end": add_months(start, months).isoformat(), "installments": 1, "payment": card(email),
    }


def order_sale(email, external_id=None, subscription_id=None):
    return {
        "external_id": external_id or f"ord-{uuid.uuid4().hex[:8]}",
        "customer": {"email": email, "name": "Elisa Prado", "phone": None, "document": None,
                     "address": {"street": "Rua A", "number": "1", "city": "Recife", "state": "PE",
                                 "postal_code": "50000-000"}},
        "product_name": "Clube", "offer_id": "mensal", "amount_cents": 3990, "status": "paid",
        "subscription_id": subscription_id, "cycle_number": 1 if subscription_id else None, "payment": card(email),
    }


def new_buyer(system, key, **sale):
    """A buyer who just bought a subscription (`subscription_sale(**sale)`, monthly by
    default) and paid its first order: (email, subscription, order)."""
    email = f"buyer-{uuid.uuid4().hex[:8]}@example.com"
    subscription = merchant_call(system, "POST", "/subscriptions", key, subscription_sale(email, **sale))
    assert subscription.status_code == 201, subscription.text
    subscription = subscription.json()["subscription"]
    order = merchant_call(system, "POST", "/orders", key, order_sale(email, subscription_id=subscription["id"]))
    assert order.status_code == 201, order.text
    return email, subscription, order.json()["order"]


def sso_session(system, key, email, return_url):
    """A session of `email` opened the way a merchant sends its buyer in (SSO), as an
    app holds it: requests with its token as Bearer."""
    issued = merchant_call(system, "POST", "/sso-tickets", key, {"email": email, "return_url": return_url})
    assert issued.status_code == 201, issued.text
    started = requests.get(issued.json()["url"].replace("/sso/", "/api/v1/sso/"), timeout=TIMEOUT)
    assert started.status_code == 200, started.text
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {started.json()['session_token']}"
    return session
