"""A newcomer onboards a merchant with nothing but the README, against the whole portal
as `make run` starts it: the operator creates the merchant, two offers and an API key
with `portalctl`; the merchant, with its key, lets its buyers change plan between the
offers and registers a webhook; a sale arrives through intake; the buyer logs in from
the e-mail and changes plan (quote, then confirm); the merchant finds the change in
its support API and the webhook's delivery in its delivery log. Every request is the
one the README's merchant section shows."""
import json
import uuid
from datetime import timedelta

import pytest

from services.common import clock
from services.subscriptions.domain import add_months
from support.login_flow import create_api_key, portalctl
from support.merchant_api import merchant_call
from support.notifications import Receiver
from support.portal_client import TIMEOUT, log_in
from support.ports import free_port
from support.waiting import wait_until


@pytest.fixture
def receiver():
    """The merchant's webhook endpoint (`make run` lets webhooks reach this machine)."""
    running = Receiver((200,), port=free_port())
    yield running
    running.close()


def operator_onboards(system, merchant_id):
    """The README's `portalctl` commands: the merchant, its two offers, its API key."""
    for command in (
        ("merchants", "create", "--id", merchant_id, "--name", "Loja Nova", "--payment-method", "credit_card"),
        ("offers", "create", "--merchant", merchant_id, "mensal", "--product", "Clube", "--plan", "Mensal",
         "--price-cents", "3990", "--periodicity-months", "1"),
        ("offers", "create", "--merchant", merchant_id, "anual", "--product", "Clube", "--plan", "Anual",
         "--price-cents", "39900", "--periodicity-months", "12", "--max-installments", "12",
         "--accept", "credit_card"),
    ):
        code, output = portalctl(system, *command)
        assert code == 0, output
    code, output = portalctl(system, "offers", "list", "--merchant", merchant_id)
    assert code == 0 and "mensal" in output and "anual" in output, output
    return create_api_key(system, merchant_id)


def checkout_sale(email):
    """A monthly subscription a checkout sold three days ago, its card by the
    processor's references only (the sandbox needs no `customer_ref`)."""
    start = clock.now() - timedelta(days=3)
    return {
        "external_id": f"sub-{uuid.uuid4().hex[:8]}", "offer_id": "mensal",
        "customer": {"email": email, "name": "Nora Nova", "document": "529.982.247-25", "phone": None,
                     "address": None},
        "status": "active", "cycle_number": 1, "cycle_start": start.isoformat(),
        "cycle_end": add_months(start, 1).isoformat(),
        "payment": {"method": "credit_card", "card": {"card_ref": f"tok_newcomer_{uuid.uuid4().hex[:8]}",
                                                      "brand": "visa", "last4": "4242", "exp": "08/2031"}},
    }


def test_a_newcomer_onboards_a_merchant_whose_buyer_changes_plan(system, receiver):
    merchant_id = f"loja-nova-{uuid.uuid4().hex[:6]}"
    key = operator_onboards(system, merchant_id)

    # The merchant's backend: self-service plan change, its option, its webhook.
    settings = merchant_call(system, "PUT", "/settings", key, {"name": "Loja Nova", "customer_can_change_plan": True})
    assert settings.status_code == 200, settings.text
    assert settings.json()["settings"]["customer_can_change_plan"] is True
    options = merchant_call(system, "PUT", "/offers/mensal/plan-change-options", key, {"plan_change_options": ["anual"]})
    assert options.status_code == 200, options.text
    webhooks = merchant_call(system, "PUT", "/webhooks", key, {"endpoints": [{"url": receiver.url}]})
    assert webhooks.status_code == 200, webhooks.text

    # A sale from the merchant's checkout.
    email = f"nora.{uuid.uuid4().hex[:6]}@example.com"
    sold = merchant_call(system, "POST", "/subscriptions", key, checkout_sale(email))
    assert sold.status_code == 201, sold.text
    subscription_id = sold.json()["subscription"]["id"]

    # The buyer logs in from the e-mail and moves to the annual plan.
    buyer, _token, _started = log_in(system, email)
    base = f"{system.gateway_url}/api/v1/me/subscriptions/{subscription_id}"
    quoted = buyer.post(f"{base}/plan-change/quote", json={"offer_id": "anual"}, timeout=TIMEOUT)
    assert quoted.status_code == 201, quoted.text
    quote = quoted.json()["quote"]
    changed = buyer.post(f"{base}/plan-change", json={"quote_id": quote["quote_id"], "installments": 1},
                         timeout=TIMEOUT)
    assert changed.status_code == 200, changed.text
    assert changed.json()["subscription"]["offer_id"] == "anual"

    # The merchant's support finds the buyer, the subscription and the change.
    customers = merchant_call(system, "GET", f"/customers?email={email}", key)
    assert [customer["email"] for customer in customers.json()["customers"]] == [email], customers.text
    subscriptions = merchant_call(system, "GET", f"/customers/{email}/subscriptions", key).json()["subscriptions"]
    assert [(item["id"], item["offer_id"]) for item in subscriptions] == [(subscription_id, "anual")]
    activity = merchant_call(system, "GET", f"/subscriptions/{subscription_id}/activity", key).json()["activity"]
    assert (activity[0]["action"], activity[0]["actor"]) == ("plan_changed", "buyer")

    # The webhook arrived, and the merchant's delivery log shows it delivered.
    def plan_change_received():
        return [request for request in receiver.requests
                if request["headers"]["X-Portal-Event-Type"] == "subscription_plan_changed"
                and json.loads(request["body"])["data"]["subscription_id"] == subscription_id]

    [request] = wait_until(plan_change_received, timeout=30, message="the plan change's webhook")

    def delivered():
        page = merchant_call(system, "GET", "/webhooks/deliveries?event_type=subscription_plan_changed", key).json()
        return [delivery for delivery in page["deliveries"]
                if delivery["event_id"] == request["headers"]["X-Portal-Event-Id"] and delivery["status"] == "delivered"]

    [delivery] = wait_until(delivered, timeout=30, message="the delivery in the merchant's log")
    assert (delivery["url"], delivery["attempts"], delivery["last_status_code"]) == (receiver.url, 1, 200)
