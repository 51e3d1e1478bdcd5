"""The merchant API as a merchant's backend and checkout use it: an API key from
`portalctl`, intake of orders and subscriptions, settings and the offers' plan-change
options, and every refusal (401, 404, 400 naming the field, a repeat answering the first)."""
import uuid
from datetime import timedelta

import pytest
import requests

from services.common.rpc import ClusterRpcProxy
from support.login_flow import ask_for_link, create_api_key, portalctl
from support.merchant_api import CARD, merchant_call, new_merchant, order_sale, subscription_sale
from support.portal_client import assert_json_error
from support.system import BROKER
from support.waiting import wait_until


@pytest.fixture(scope="module")
def shop(system):
    return new_merchant(system)


def test_a_checkout_feeds_a_subscription_and_its_order_in_once(system, shop):
    merchant_id, key = shop
    email = f"elisa.{uuid.uuid4().hex[:6]}@example.com"
    sale = subscription_sale(email, f"sub-{uuid.uuid4().hex[:6]}")

    first = merchant_call(system, "POST", "/subscriptions", key, sale)
    assert first.status_code == 201, first.text
    subscription = first.json()["subscription"]
    assert subscription["merchant"]["id"] == merchant_id and subscription["offer_id"] == "mensal"
    assert subscription["payment_method"] == {"method": "credit_card", **CARD}
    assert "tok_checkout" not in first.text  # the processor's token never comes back

    order = merchant_call(system, "POST", "/orders", key, order_sale(email, sale["external_id"] + "-c1", subscription["id"]))
    assert order.status_code == 201, order.text
    assert order.json()["order"]["subscription_id"] == subscription["id"]

    # The same sale again (even changed) answers what the first call created.
    again = merchant_call(system, "POST", "/subscriptions", key, {**sale, "offer_id": "anual"})
    assert again.status_code == 201 and again.json()["subscription"] == subscription
    order_again = merchant_call(system, "POST", "/orders", key, order_sale(email, sale["external_id"] + "-c1", subscription["id"]))
    assert order_again.json()["order"]["code"] == order.json()["order"]["code"]


def test_a_subscription_taken_in_before_its_order_renews_with_its_card(system, shop):
    """The checkout sends the subscription first, and its order later (or never): the
    card came with the subscription, so the renewal charges it."""
    merchant_id, key = shop
    email = f"iara.{uuid.uuid4().hex[:6]}@example.com"
    # A monthly cycle that ended days ago: due at the next pass.
    sale = subscription_sale(email, started=timedelta(days=40))
    answer = merchant_call(system, "POST", "/subscriptions", key, sale)
    assert answer.status_code == 201, answer.text
    subscription_id = answer.json()["subscription"]["id"]
    buyer = {"email": email, "merchant_id": merchant_id, "session_id": "e2e"}

    with ClusterRpcProxy({"AMQP_URI": f"{BROKER}/{system.vhost}"}, timeout=30) as rpc:
        def renewed():
            rpc.subscriptions.run_renewals()
            return rpc.subscriptions.get_subscription(buyer, subscription_id)["cycle"]["number"] == 2

        wait_until(renewed, message="the renewal charged")
        [order] = rpc.billing.list_orders(buyer, subscription_id)
    assert (order["status"], order["amount_cents"], order["cycle_number"]) == ("paid", 3990, 2)
    assert {key: order["payment"][key] for key in ("method", "card_last4")} == {"method": "credit_card",
                                                                                 "card_last4": "4242"}


def test_the_intake_buyer_can_log_in(system, shop):
    _merchant_id, key = shop
    email = f"fabio.{uuid.uuid4().hex[:6]}@example.com"
    answer = merchant_call(system, "POST", "/orders", key, order_sale(email, f"ord-{uuid.uuid4().hex[:6]}"))
    assert answer.status_code == 201, answer.text
    # A login e-mail is sent only to someone who bought: this one arrives.
    message = ask_for_link(system, requests.Session(), email)
    assert email in message["to"]


def test_settings_are_read_and_replaced_with_the_key(system, shop):
    merchant_id, key = shop
    assert merchant_call(system, "GET", "/settings", key).json()["settings"]["customer_can_cancel"] is False
    settings = {"name": "Loja de Teste", "customer_can_cancel": True, "cancel_mode": "immediately",
                "support_email": "ajuda@loja.example.com", "allowed_origins": ["https://loja.example.com"]}
    answer = merchant_call(system, "PUT", "/settings", key, settings)
    assert answer.status_code == 200, answer.text
    assert merchant_call(system, "GET", "/settings", key).json()["settings"] == answer.json()["settings"]
    assert answer.json()["settings"]["id"] == merchant_id
    assert answer.json()["settings"]["cancel_mode"] == "immediately"


def test_plan_change_options_are_set_on_the_merchants_own_offers(system, shop):
    _merchant_id, key = shop
    answer = merchant_call(system, "PUT", "/offers/mensal/plan-change-options", key, {"plan_change_options": ["anual"]})
    assert answer.status_code == 200, answer.text
    offers = {offer["id"]: offer for offer in merchant_call(system, "GET", "/offers", key).json()["offers"]}
    assert set(offers) == {"mensal", "anual"}
    assert offers["mensal"]["plan_change_options"] == ["anual"]
    refused = merchant_call(system, "PUT", "/offers/mensal/plan-change-options", key, {"plan_change_options": ["mensal"]})
    assert "plan_change_options" in assert_json_error(refused, 400)["fields"]


def test_a_wrong_or_revoked_key_is_refused(system, shop):
    merchant_id, key = shop
    assert_json_error(merchant_call(system, "GET", "/offers", None), 401, "api_key_required")
    assert_json_error(merchant_call(system, "GET", "/offers", key[:-4] + "abcd"), 401, "invalid_api_key")
    revoked = create_api_key(system, merchant_id)
    code, output = portalctl(system, "api-keys", "revoke", revoked.split("_")[2])
    assert code == 0, output
    for method, path in (("GET", "/settings"), ("POST", "/orders"), ("POST", "/subscriptions")):
        assert_json_error(merchant_call(system, method, path, revoked, {}), 401, "invalid_api_key")


def test_another_merchants_objects_are_not_found(system, shop):
    _merchant_id, key = shop
    # beta-pro-mensal is the demo's Beta Software offer.
    answer = merchant_call(system, "PUT", "/offers/beta-pro-mensal/plan-change-options", key, {"plan_change_options": []})
    assert_json_error(answer, 404)
    assert "beta-pro-mensal" not in merchant_call(system, "GET", "/offers", key).text


@pytest.mark.parametrize("path, body, field", [
    ("/subscriptions", {"offer_id": "mensal"}, "external_id"),
    ("/subscriptions", {"card_number": "4242424242424242"}, "card_number"),
    ("/orders", {"amount_cents": "10"}, "amount_cents"),
    ("/settings", {"name": "x", "accent_color": "red"}, "accent_color"),
    ("/settings", {"name": "Loja\u0000"}, "name"),
    ("/offers/mensal/plan-change-options", {"plan_change_options": "anual"}, "plan_change_options"),
])
def test_a_malformed_body_is_refused_naming_the_field(system, shop, path, body, field):
    _merchant_id, key = shop
    method = "POST" if path in ("/subscriptions", "/orders") else "PUT"
    error = assert_json_error(merchant_call(system, method, path, key, body), 400, "validation_error")
    assert field in error["fields"]
    assert "4242424242424242" not in str(error)


def test_the_rules_of_the_owning_service_name_the_field(system, shop):
    _merchant_id, key = shop
    sale = subscription_sale("gil@example.com", f"sub-{uuid.uuid4().hex[:6]}")
    # A card without its token, and an offer of another merchant.
    answer = merchant_call(system, "POST", "/subscriptions", key, {**sale, "offer_id": "beta-pro-mensal"})
    assert "offer_id" in assert_json_error(answer, 400)["fields"]
    answer = merchant_call(system, "POST", "/subscriptions", key, {**sale, "payment": CARD})
    assert "payment" in assert_json_error(answer, 400)["fields"]


def test_an_order_naming_another_merchants_subscription_is_not_found(system, shop):
    _merchant_id, key = shop
    _other_id, other_key = new_merchant(system)
    email = f"hugo.{uuid.uuid4().hex[:6]}@example.com"
    theirs = merchant_call(system, "POST", "/subscriptions", other_key, subscription_sale(email))
    assert theirs.status_code == 201, theirs.text
    subscription_id = theirs.json()["subscription"]["id"]

    refused = merchant_call(system, "POST", "/orders", key, order_sale(email, subscription_id=subscription_id))
    assert "subscription_id" in assert_json_error(refused, 404, "not_found")["fields"]
    # The subscription's own merchant records its order.
    own = merchant_call(system, "POST", "/orders", other_key, order_sale(email, subscription_id=subscription_id))
    assert own.status_code == 201, own.text
    assert own.json()["order"]["subscription_id"] == subscription_id


def test_a_merchant_refunds_its_order_once_per_key_and_never_more_than_was_paid(system, shop):
    """Through the gateway: POST and GET an order's refunds, the Idempotency-Key making
    a repeat refund once; an order a checkout charged itself is left to the merchant
    (pending_manual); another merchant's order is 404."""
    _merchant_id, key = shop
    email = f"rita.{uuid.uuid4().hex[:6]}@example.com"
    order = merchant_call(system, "POST", "/orders", key, order_sale(email)).json()["order"]
    path = f"/orders/{order['code']}/refunds"
    refund_key = {"Idempotency-Key": f"rf-{uuid.uuid4().hex}"}

    without_key = merchant_call(system, "POST", path, key, {"amount_cents": 1000})
    assert_json_error(without_key, 400, "validation_error")
    assert "Idempotency-Key" in without_key.json()["error"]["fields"]
    first = merchant_call(system, "POST", path, key, {"amount_cents": 1000, "reason": "Desistência"}, refund_key)
    assert first.status_code == 201, first.text
    refund = first.json()["refund"]
    assert (refund["order_code"], refund["amount_cents"], refund["status"], refund["actor"]) == (
        order["code"], 1000, "pending_manual", "merchant")
    again = merchant_call(system, "POST", path, key, {"amount_cents": 1000, "reason": "Desistência"}, refund_key)
    assert again.status_code == 201 and again.json()["refund"] == refund
    too_much = merchant_call(system, "POST", path, key, {"amount_cents": order["amount_cents"]},
                             {"Idempotency-Key": f"rf-{uuid.uuid4().hex}"})
    assert_json_error(too_much, 400, "exceeds_paid")
    assert "amount_cents" in too_much.json()["error"]["fields"]
    listed = merchant_call(system, "GET", path, key)
    assert listed.status_code == 200 and listed.json() == {"refunds": [refund]}

    _other, other_key = new_merchant(system)
    assert_json_error(merchant_call(system, "GET", path, other_key), 404, "not_found")
    assert_json_error(merchant_call(system, "POST", path, other_key, {}, refund_key), 404, "not_found")
    assert_json_error(merchant_call(system, "GET", path, None), 401, "api_key_required")

    # The merchant gave the money back itself: it says so, and the order is partly refunded.
    done_path = f"{path}/{refund['id']}/done"
    assert_json_error(merchant_call(system, "POST", done_path, other_key), 404, "not_found")
    done = merchant_call(system, "POST", done_path, key)
    assert done.status_code == 200, done.text
    assert (done.json()["refund"]["id"], done.json()["refund"]["status"]) == (refund["id"], "done")
