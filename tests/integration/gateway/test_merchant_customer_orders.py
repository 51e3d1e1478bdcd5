"""A buyer's orders in the merchant's support API, from the real billing through the
gateway: newest first, a page at a time; the same buyer's orders at another merchant
found nowhere; the query string checked, naming the field."""
import uuid
from datetime import timedelta

import pytest

from gateway.service import GatewayService
from services.auth.service import AuthService
from services.billing.service import BillingService
from services.common import clock
from services.common.rpc import ClusterRpcProxy
from services.subscriptions.service import SubscriptionsService
from support.gateway_portal import merchant
from support.portal_client import assert_json_error
from support.ports import free_port


@pytest.fixture
def portal(service_config, web_config, runner_factory):
    """conftest.py's portal, but with billing itself, whose orders the route reads."""
    config = service_config("subscriptions", "billing", "auth", **web_config, RPC_TIMEOUT=10,
                            BILLING_PUBLIC_URL=f"http://{web_config['WEB_SERVER_ADDRESS']}")
    runner_factory(config, SubscriptionsService, BillingService, AuthService).start()
    address = f"127.0.0.1:{free_port()}"
    runner_factory({**config, "WEB_SERVER_ADDRESS": address}, GatewayService).start()
    with ClusterRpcProxy(config, timeout=30) as rpc:
        yield f"http://{address}", rpc


def paid_order(email, days_ago):
    return {"external_id": f"ord-{uuid.uuid4().hex[:8]}", "customer": {"email": email, "name": "Elisa Prado"},
            "product_name": "Curso", "amount_cents": 4990, "status": "paid",
            "created_at": (clock.now() - timedelta(days=days_ago)).isoformat(),
            "payment": {"method": "credit_card", "card_brand": "visa", "card_last4": "4242", "card_exp": "08/2031",
                        "token": f"tok_{uuid.uuid4().hex[:12]}"}}


def test_a_merchant_pages_through_its_buyers_orders_and_sees_no_other_merchants(portal):
    shop, other = merchant(portal, "loja-pedidos"), merchant(portal, "loja-ao-lado")
    email = f"buyer-{uuid.uuid4().hex[:8]}@example.com"
    codes = []  # oldest first
    for days_ago in (3, 2, 1):
        answer = shop("POST", "/orders", paid_order(email, days_ago))
        assert answer.status_code == 201, answer.text
        codes.append(answer.json()["order"]["code"])
    # The same buyer at the other merchant, and another buyer at this one.
    assert other("POST", "/orders", paid_order(email, 0)).status_code == 201
    assert shop("POST", "/orders", paid_order(f"other-{email}", 0)).status_code == 201

    first = shop("GET", f"/customers/{email.upper()}/orders", limit=2)
    assert first.status_code == 200 and first.headers["Cache-Control"] == "no-store"
    assert [order["code"] for order in first.json()["orders"]] == [codes[2], codes[1]]
    assert first.json()["next_cursor"] == codes[1]
    rest = shop("GET", f"/customers/{email}/orders", cursor=first.json()["next_cursor"]).json()
    assert [order["code"] for order in rest["orders"]] == [codes[0]] and rest["next_cursor"] is None
    assert (rest["orders"][0]["amount_cents"], rest["orders"][0]["refunds"]) == (4990, [])

    # The other merchant sees only its own order, and never this one's codes as cursors.
    [theirs] = other("GET", f"/customers/{email}/orders").json()["orders"]
    assert theirs["code"] not in codes
    assert other("GET", f"/customers/{email}/orders", cursor=codes[1]).json() == {"orders": [], "next_cursor": None}
    assert shop("GET", "/customers/ninguem@example.com/orders").json() == {"orders": [], "next_cursor": None}

    assert list(assert_json_error(shop("GET", f"/customers/{email}/orders", cursor="x"), 400)["fields"]) == ["cursor"]
    assert list(assert_json_error(shop("GET", f"/customers/{email}/orders", limit=0), 400)["fields"]) == ["limit"]
    assert list(assert_json_error(shop("GET", "/customers/not-an-email/orders"), 400)["fields"]) == ["email"]
