"""The merchant API as a merchant's backend calls it, on the portal that
tests/integration/gateway/conftest.py runs (`portal`)."""
import uuid
from datetime import timedelta

import requests

from services.common import clock
from services.subscriptions.domain import add_months
from support.portal_client import TIMEOUT


def merchant(portal, merchant_id):
    """A merchant an operator onboarded, and its API key: `call(method, path, body=None, **query)`."""
    url, rpc = portal
    rpc.subscriptions.create_merchant({"id": merchant_id, "name": merchant_id,
                                       "payment_methods_allowed": ["credit_card", "pix"]})
    key = rpc.auth.create_api_key(merchant_id)["key"]

    def call(method, path, body=None, **query):
        return requests.request(method, f"{url}/api/v1/merchant{path}", json=body, params=query, timeout=TIMEOUT,
                                headers={"Authorization": f"Bearer {key}"})

    return call


def offer(offer_id, price, months, **terms):
    return {"id": offer_id, "product_name": "Clube", "plan_name": offer_id, "price_cents": price,
            "periodicity_months": months, **terms}


def sale(offer_id):
    start = clock.now() - timedelta(days=2)
    email = f"buyer-{uuid.uuid4().hex[:8]}@example.com"
    return {"external_id": f"sub-{uuid.uuid4().hex[:8]}", "offer_id": offer_id,
            "customer": {"email": email, "name": "Elisa Prado"}, "status": "active", "cycle_number": 1,
            "cycle_start": start.isoformat(), "cycle_end": add_months(start, 1).isoformat(),
            "payment": {"method": "credit_card", "card_brand": "visa", "card_last4": "4242", "card_exp": "08/2031",
                        "token": f"tok_{email}"}}
