"""The merchant's support API through the gateway (the portal of conftest.py): buyers
found by e-mail or CPF/CNPJ in any punctuation, a buyer's subscriptions and a
subscription's activity by page, with who acted; another merchant's buyer or
subscription found nowhere; query strings checked, naming the field."""
from support.gateway_portal import merchant, offer, sale
from support.portal_client import assert_json_error

CPF = "529.982.247-25"


def buyer_identity(merchant_id, email):
    """What the gateway sends for a buyer's session at the merchant."""
    return {"email": email, "merchant_id": merchant_id, "session_id": "session-of-the-test"}


def test_a_merchant_finds_its_buyers_their_subscriptions_and_what_happened(portal):
    _url, rpc = portal
    shop, other = merchant(portal, "loja-suporte"), merchant(portal, "loja-vizinha")
    for call in (shop, other):
        assert call("POST", "/offers", offer("mensal", 3990, 1)).status_code == 201
    assert shop("PUT", "/settings", {"name": "Loja", "customer_can_cancel": True}).status_code == 200
    first = sale("mensal")
    email = first["customer"]["email"]
    first["customer"]["document"] = CPF
    second = {**sale("mensal"), "customer": first["customer"]}
    sold = [shop("POST", "/subscriptions", body).json()["subscription"]["id"] for body in (first, second)]
    # The same buyer at the other merchant, and another buyer at this one.
    elsewhere = other("POST", "/subscriptions", {**sale("mensal"), "customer": first["customer"]})
    assert elsewhere.status_code == 201
    assert shop("POST", "/subscriptions", sale("mensal")).status_code == 201

    by_email = shop("GET", "/customers", email=email.upper())
    assert by_email.status_code == 200 and by_email.headers["Cache-Control"] == "no-store"
    [customer] = by_email.json()["customers"]
    assert (customer["merchant_id"], customer["email"], customer["document"], customer["name"]) == (
        "loja-suporte", email, CPF, "Elisa Prado")
    assert by_email.json()["next_cursor"] is None
    assert shop("GET", "/customers", document="52998224725").json()["customers"] == [customer]
    assert shop("GET", "/customers", email="ninguem@example.com").json() == {"customers": [], "next_cursor": None}
    assert list(assert_json_error(shop("GET", "/customers"), 400)["fields"]) == ["email"]
    assert list(assert_json_error(shop("GET", "/customers", document="529.982.247-24"), 400)["fields"]) == [
        "document"]
    assert list(assert_json_error(shop("GET", "/customers", email=email, cursor="x"), 400)["fields"]) == ["cursor"]

    page = shop("GET", f"/customers/{email}/subscriptions", limit=1).json()
    assert [s["id"] for s in page["subscriptions"]] == [min(sold)] and page["next_cursor"] == min(sold)
    rest = shop("GET", f"/customers/{email}/subscriptions", cursor=page["next_cursor"]).json()
    assert [s["id"] for s in rest["subscriptions"]] == [max(sold)] and rest["next_cursor"] is None
    assert rest["subscriptions"][0]["offer_id"] == "mensal" and rest["subscriptions"][0]["status"] == "active"

    # The buyer cancels, changes their mind, and cancels again: four entries with the sale, newest first.
    subscription_id = sold[0]
    identity = buyer_identity("loja-suporte", email)
    rpc.subscriptions.cancel(identity, subscription_id, {"reason": "too_expensive"})
    rpc.subscriptions.undo_cancel(identity, subscription_id)
    rpc.subscriptions.cancel(identity, subscription_id)
    newest = shop("GET", f"/subscriptions/{subscription_id}/activity", limit=2).json()
    assert [(e["actor"], e["action"]) for e in newest["activity"]] == [
        ("buyer", "cancellation_scheduled"), ("buyer", "cancellation_undone")]
    oldest = shop("GET", f"/subscriptions/{subscription_id}/activity", cursor=newest["next_cursor"]).json()
    assert [(e["actor"], e["action"]) for e in oldest["activity"]] == [
        ("buyer", "cancellation_scheduled"), ("merchant", "subscription_created")]
    assert oldest["activity"][0]["details"]["feedback"] == "too_expensive" and oldest["next_cursor"] is None
    assert list(assert_json_error(shop("GET", f"/subscriptions/{subscription_id}/activity", limit="0"), 400)[
        "fields"]) == ["limit"]

    # Another merchant sees its own buyer and subscription only.
    [theirs] = other("GET", "/customers", email=email).json()["customers"]
    assert theirs["merchant_id"] == "loja-vizinha" and theirs["id"] != customer["id"]
    their_subscriptions = other("GET", f"/customers/{email}/subscriptions").json()["subscriptions"]
    assert [s["id"] for s in their_subscriptions] == [elsewhere.json()["subscription"]["id"]]
    assert_json_error(other("GET", f"/subscriptions/{subscription_id}/activity"), 404)
    assert_json_error(shop("GET", "/subscriptions/no-such-subscription/activity"), 404)


def test_the_merchant_cancels_and_undoes_for_its_buyer_as_itself(portal, event_queue):
    shop, other = merchant(portal, "loja-atende"), merchant(portal, "loja-alheia")
    assert shop("POST", "/offers", offer("mensal", 3990, 1)).status_code == 201
    # The buyer may not cancel by themselves here; the merchant's support still may.
    assert shop("PUT", "/settings", {"name": "Loja", "customer_can_cancel": False}).status_code == 200
    announced = event_queue("subscriptions", "subscription_cancellation_scheduled",
                            "subscription_cancellation_undone", "subscription_canceled")
    later, now = (shop("POST", "/subscriptions", sale("mensal")).json()["subscription"] for _ in range(2))

    scheduled = shop("POST", f"/subscriptions/{later['id']}/cancel", {"at_period_end": True, "reason": "other"})
    assert scheduled.status_code == 200, scheduled.text
    subscription = scheduled.json()["subscription"]
    assert (subscription["status"], subscription["cancel_at_period_end"]) == ("active", True)
    assert_json_error(shop("POST", f"/subscriptions/{later['id']}/cancel", {"at_period_end": True}), 422,
                      "cancellation_already_scheduled")
    undone = shop("DELETE", f"/subscriptions/{later['id']}/cancel")
    assert undone.status_code == 200 and undone.json()["subscription"]["cancel_at_period_end"] is False
    assert_json_error(shop("DELETE", f"/subscriptions/{later['id']}/cancel"), 422, "no_scheduled_cancellation")

    ended = shop("POST", f"/subscriptions/{now['id']}/cancel", {"at_period_end": False, "comment": "pediu no chat"})
    assert ended.status_code == 200 and ended.json()["subscription"]["status"] == "canceled"
    assert list(assert_json_error(shop("POST", f"/subscriptions/{later['id']}/cancel", {}), 400)["fields"]) == [
        "at_period_end"]

    # Recorded as the merchant's, in the activity and in the events a buyer's would send.
    activity = shop("GET", f"/subscriptions/{later['id']}/activity").json()["activity"]
    assert [(e["actor"], e["action"]) for e in activity[:2]] == [
        ("merchant", "cancellation_undone"), ("merchant", "cancellation_scheduled")]
    events = [announced.get(timeout=10).payload for _ in range(3)]
    assert [(e["type"], e["data"]["subscription_id"], e["data"]["actor"]) for e in events] == [
        ("subscription_cancellation_scheduled", later["id"], "merchant"),
        ("subscription_cancellation_undone", later["id"], "merchant"),
        ("subscription_canceled", now["id"], "merchant")]
    assert events[2]["data"]["reason"] == "merchant" and events[2]["data"]["comment"] == "pediu no chat"

    # Another merchant cannot touch them.
    assert_json_error(other("POST", f"/subscriptions/{later['id']}/cancel", {"at_period_end": False}), 404)
    assert_json_error(other("DELETE", f"/subscriptions/{later['id']}/cancel"), 404)
    assert shop("GET", f"/subscriptions/{later['id']}/activity").json()["activity"][0]["action"] == (
        "cancellation_undone")


def test_the_merchant_sends_its_buyer_the_login_email_again(portal, event_queue):
    shop, other = merchant(portal, "loja-acesso"), merchant(portal, "loja-longe")
    assert shop("POST", "/offers", offer("mensal", 3990, 1)).status_code == 201
    announced = event_queue("auth", "login_link_requested")
    body = sale("mensal")
    email = body["customer"]["email"]
    subscription = shop("POST", "/subscriptions", body).json()["subscription"]

    assert_json_error(other("POST", f"/customers/{email}/login-link"), 404)
    assert_json_error(shop("POST", "/customers/ninguem@example.com/login-link"), 404)
    sent = shop("POST", f"/customers/{email.upper()}/login-link")
    assert sent.status_code == 202 and sent.json() == {"accepted": True}

    envelope = announced.get(timeout=10).payload
    assert (envelope["merchant_id"], envelope["data"]["email"], envelope["data"]["actor"]) == (
        "loja-acesso", email, "merchant")
    assert announced.qsize() == 0
    [noted, *_] = shop("GET", f"/subscriptions/{subscription['id']}/activity").json()["activity"]
    assert (noted["actor"], noted["action"]) == ("merchant", "login_link_requested")


def test_the_merchant_changes_its_buyers_plan_as_quoted(portal, event_queue):
    shop, other = merchant(portal, "loja-planos"), merchant(portal, "loja-fora")
    for body in (offer("mensal", 3990, 1), offer("anual", 39900, 12, max_installments=12)):
        assert shop("POST", "/offers", body).status_code == 201
    assert shop("PUT", "/offers/mensal/plan-change-options", {"plan_change_options": ["anual"]}).status_code == 200
    # The buyer may not change plan by themselves here; the merchant's support still may.
    assert shop("PUT", "/settings", {"name": "Loja", "customer_can_change_plan": False}).status_code == 200
    announced = event_queue("subscriptions", "subscription_plan_changed")
    subscription = shop("POST", "/subscriptions", sale("mensal")).json()["subscription"]
    path = f"/subscriptions/{subscription['id']}/plan-change"

    assert_json_error(other("POST", f"{path}/quote", {"offer_id": "anual"}), 404)
    assert_json_error(shop("POST", f"{path}/quote", {"offer_id": "mensal"}), 422)
    quoted = shop("POST", f"{path}/quote", {"offer_id": "anual"})
    assert quoted.status_code == 201, quoted.text
    quote = quoted.json()["quote"]
    assert quote["to_offer_id"] == "anual" and quote["charge_cents"] > 0
    assert_json_error(other("POST", path, {"quote_id": quote["quote_id"]}), 404)
    changed = shop("POST", path, {"quote_id": quote["quote_id"], "installments": 3})
    assert changed.status_code == 200, changed.text
    assert changed.json()["subscription"]["offer_id"] == "anual"
    assert changed.json()["order"]["amount_cents"] == quote["charge_cents"]

    event = announced.get(timeout=10).payload
    assert (event["data"]["subscription_id"], event["data"]["actor"], event["data"]["to_offer_id"]) == (
        subscription["id"], "merchant", "anual")
    entries = shop("GET", f"/subscriptions/{subscription['id']}/activity").json()["activity"]
    assert ("merchant", "plan_changed") in [(e["actor"], e["action"]) for e in entries]
