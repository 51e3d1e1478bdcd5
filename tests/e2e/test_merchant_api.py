"""The merchant API as a merchant's backend and checkout use it: an API key from
`portalctl`, intake of orders and subscriptions, settings and the offers' plan-change
options, and every refusal (401, 404, 400 naming the field, a repeat answering the first)."""
import uuid
from datetime import timedelta

import pytest
import requests
from nameko.standalone.rpc import ClusterRpcProxy

from services.common import clock
from support.login_flow import ask_for_link, create_api_key, portalctl
from support.portal_client import TIMEOUT, assert_json_error
from support.system import BROKER

CARD = {"method": "credit_card", "card_brand": "visa", "card_last4": "4242", "card_exp": "08/2031"}


def card(email):
    """The processor's token of the card a buyer used (a token belongs to one buyer)."""
    return {**CARD, "token": f"tok_checkout_{email.split('@')[0]}"}


@pytest.fixture(scope="module")
def shop(system):
    """A merchant of its own (an operator creates it and its offers), with an API key."""
    merchant_id = f"loja-{uuid.uuid4().hex[:8]}"
    with ClusterRpcProxy({"AMQP_URI": f"{BROKER}/{system.vhost}"}, timeout=30) as rpc:
        rpc.subscriptions.upsert_merchant({"id": merchant_id, "name": "Loja E2E"})
        for offer_id, price, months in (("mensal", 3990, 1), ("anual", 39900, 12)):
            rpc.subscriptions.upsert_offer({
                "merchant_id": merchant_id, "id": offer_id, "product_name": "Clube", "plan_name": offer_id,
                "price_cents": price, "periodicity_months": months, "max_installments": months,
            })
    return merchant_id, create_api_key(system, merchant_id)


def call(system, method, path, key, body=None):
    return requests.request(
        method, f"{system.gateway_url}/api/v1/merchant{path}", json=body, timeout=TIMEOUT,
        headers={"Authorization": f"Bearer {key}"} if key else {},
    )


def subscription_sale(email, external_id):
    start = clock.now() - timedelta(days=3)
    return {
        "external_id": external_id, "offer_id": "mensal",
        "customer": {"email": email, "name": "Elisa Prado", "document": "529.982.247-25",
                     "phone": "+55 11 90000-0000", "address": None},
        "status": "active", "cycle_number": 1, "cycle_start": start.isoformat(),
        "cycle_end": (start + timedelta(days=30)).isoformat(), "installments": 1, "payment": card(email),
    }


def order_sale(email, external_id, subscription_id=None):
    return {
        "external_id": external_id,
        "customer": {"email": email, "name": "Elisa Prado", "phone": None, "document": None,
                     "address": {"street": "Rua A", "number": "1", "city": "Recife", "state": "PE",
                                 "postal_code": "50000-000"}},
        "product_name": "Clube", "offer_id": "mensal", "amount_cents": 3990, "status": "paid",
        "subscription_id": subscription_id, "cycle_number": 1 if subscription_id else None, "payment": card(email),
    }


def test_a_checkout_feeds_a_subscription_and_its_order_in_once(system, shop):
    merchant_id, key = shop
    email = f"elisa.{uuid.uuid4().hex[:6]}@example.com"
    sale = subscription_sale(email, f"sub-{uuid.uuid4().hex[:6]}")

    first = call(system, "POST", "/subscriptions", key, sale)
    assert first.status_code == 201, first.text
    subscription = first.json()["subscription"]
    assert subscription["merchant"]["id"] == merchant_id and subscription["offer_id"] == "mensal"
    assert subscription["payment_method"] == {"method": "credit_card", **CARD}
    assert "tok_checkout" not in first.text  # the processor's token never comes back

    order = call(system, "POST", "/orders", key, order_sale(email, sale["external_id"] + "-c1", subscription["id"]))
    assert order.status_code == 201, order.text
    assert order.json()["order"]["subscription_id"] == subscription["id"]

    # The same sale again (even changed) answers what the first call created.
    again = call(system, "POST", "/subscriptions", key, {**sale, "offer_id": "anual"})
    assert again.status_code == 201 and again.json()["subscription"] == subscription
    order_again = call(system, "POST", "/orders", key, order_sale(email, sale["external_id"] + "-c1", subscription["id"]))
    assert order_again.json()["order"]["code"] == order.json()["order"]["code"]


def test_the_intake_buyer_can_log_in(system, shop):
    _merchant_id, key = shop
    email = f"fabio.{uuid.uuid4().hex[:6]}@example.com"
    answer = call(system, "POST", "/orders", key, order_sale(email, f"ord-{uuid.uuid4().hex[:6]}"))
    assert answer.status_code == 201, answer.text
    # A login e-mail is sent only to someone who bought: this one arrives.
    message = ask_for_link(system, requests.Session(), email)
    assert email in message["to"]


def test_settings_are_read_and_replaced_with_the_key(system, shop):
    merchant_id, key = shop
    assert call(system, "GET", "/settings", key).json()["settings"]["customer_can_cancel"] is False
    settings = {"name": "Loja E2E", "customer_can_cancel": True, "cancel_mode": "immediately",
                "support_email": "ajuda@loja.example.com", "allowed_origins": ["https://loja.example.com"]}
    answer = call(system, "PUT", "/settings", key, settings)
    assert answer.status_code == 200, answer.text
    assert call(system, "GET", "/settings", key).json()["settings"] == answer.json()["settings"]
    assert answer.json()["settings"]["id"] == merchant_id
    assert answer.json()["settings"]["cancel_mode"] == "immediately"


def test_plan_change_options_are_set_on_the_merchants_own_offers(system, shop):
    _merchant_id, key = shop
    answer = call(system, "PUT", "/offers/mensal/plan-change-options", key, {"plan_change_options": ["anual"]})
    assert answer.status_code == 200, answer.text
    offers = {offer["id"]: offer for offer in call(system, "GET", "/offers", key).json()["offers"]}
    assert set(offers) == {"mensal", "anual"}
    assert offers["mensal"]["plan_change_options"] == ["anual"]
    refused = call(system, "PUT", "/offers/mensal/plan-change-options", key, {"plan_change_options": ["mensal"]})
    assert "plan_change_options" in assert_json_error(refused, 400)["fields"]


def test_a_wrong_or_revoked_key_is_refused(system, shop):
    merchant_id, key = shop
    assert_json_error(call(system, "GET", "/offers", None), 401, "api_key_required")
    assert_json_error(call(system, "GET", "/offers", key[:-4] + "abcd"), 401, "invalid_api_key")
    revoked = create_api_key(system, merchant_id)
    code, output = portalctl(system, "api-keys", "revoke", revoked.split("_")[2])
    assert code == 0, output
    for method, path in (("GET", "/settings"), ("POST", "/orders"), ("POST", "/subscriptions")):
        assert_json_error(call(system, method, path, revoked, {}), 401, "invalid_api_key")


def test_another_merchants_objects_are_not_found(system, shop):
    _merchant_id, key = shop
    # beta-pro-mensal is the demo's Beta Software offer.
    answer = call(system, "PUT", "/offers/beta-pro-mensal/plan-change-options", key, {"plan_change_options": []})
    assert_json_error(answer, 404)
    assert "beta-pro-mensal" not in call(system, "GET", "/offers", key).text


@pytest.mark.parametrize("path, body, field", [
    ("/subscriptions", {"offer_id": "mensal"}, "external_id"),
    ("/subscriptions", {"card_number": "4242424242424242"}, "card_number"),
    ("/orders", {"amount_cents": "10"}, "amount_cents"),
    ("/settings", {"name": "x", "accent_color": "red"}, "accent_color"),
    ("/offers/mensal/plan-change-options", {"plan_change_options": "anual"}, "plan_change_options"),
])
def test_a_malformed_body_is_refused_naming_the_field(system, shop, path, body, field):
    _merchant_id, key = shop
    method = "POST" if path in ("/subscriptions", "/orders") else "PUT"
    error = assert_json_error(call(system, method, path, key, body), 400, "validation_error")
    assert field in error["fields"]
    assert "4242424242424242" not in str(error)


def test_the_rules_of_the_owning_service_name_the_field(system, shop):
    _merchant_id, key = shop
    sale = subscription_sale("gil@example.com", f"sub-{uuid.uuid4().hex[:6]}")
    # A card without its token, and an offer of another merchant.
    answer = call(system, "POST", "/subscriptions", key, {**sale, "offer_id": "beta-pro-mensal"})
    assert "offer_id" in assert_json_error(answer, 400)["fields"]
    answer = call(system, "POST", "/subscriptions", key, {**sale, "payment": CARD})
    assert "payment" in assert_json_error(answer, 400)["fields"]
