"""The merchant API's catalog and delivery log through the gateway, with auth (the API
keys), subscriptions, notifications and a stand-in billing on the broker: offers
created, changed, archived, listed by page; a price change of an offer in use refused
naming the field; deliveries listed and replayed; another merchant's offer or
delivery answering 404 on every route; bodies and query strings checked, naming the field."""
from support.gateway_portal import merchant, offer, sale
from support.portal_client import assert_json_error
from support.waiting import wait_until


def test_a_merchant_manages_its_offers_and_reads_and_replays_its_deliveries(portal, receiver, event_queue):
    shop, other = merchant(portal, "loja-nova"), merchant(portal, "loja-outra")
    announced = event_queue("subscriptions", "offer_changed")

    created = shop("POST", "/offers", offer("mensal", 3990, 1, payment_methods_accepted=["credit_card"]))
    assert created.status_code == 201, created.text
    assert created.json()["offer"] == {
        "merchant_id": "loja-nova", "id": "mensal", "product_name": "Clube", "plan_name": "mensal",
        "price_cents": 3990, "periodicity_months": 1, "max_installments": 1, "plan_change_options": [],
        "payment_methods_accepted": ["credit_card"], "status": "active"}
    assert shop("POST", "/offers", offer("anual", 39900, 12, max_installments=12)).status_code == 201
    assert_json_error(shop("POST", "/offers", offer("mensal", 1, 1)), 409, "offer_exists")
    refused = assert_json_error(shop("POST", "/offers", offer("boleto", 100, 1, payment_methods_accepted=["boleto"])), 400)
    assert list(refused["fields"]) == ["payment_methods_accepted"]
    refused = assert_json_error(shop("POST", "/offers", {**offer("x", 0, 5), "price": 1}), 400)
    assert set(refused["fields"]) == {"price_cents", "periodicity_months", "price"}

    first = shop("GET", "/offers", limit=1).json()
    assert [o["id"] for o in first["offers"]] == ["anual"] and first["next_cursor"] == "anual"
    rest = shop("GET", "/offers", cursor=first["next_cursor"]).json()
    assert [o["id"] for o in rest["offers"]] == ["mensal"] and rest["next_cursor"] is None
    assert list(assert_json_error(shop("GET", "/offers", limit="0"), 400)["fields"]) == ["limit"]
    assert list(assert_json_error(shop("GET", "/offers", sort="id"), 400)["fields"]) == ["sort"]

    changed = shop("PATCH", "/offers/mensal", {"price_cents": 4490, "plan_name": "Mensal"})
    assert changed.status_code == 200 and changed.json()["offer"]["price_cents"] == 4490

    # The merchant listens to its webhooks, and a sale arrives: the offer is in use.
    assert shop("PUT", "/webhooks", {"endpoints": [{"url": receiver.url}]}).status_code == 200
    sold = shop("POST", "/subscriptions", sale("mensal"))
    assert sold.status_code == 201, sold.text
    refused = assert_json_error(shop("PATCH", "/offers/mensal", {"price_cents": 4990}), 400)
    assert list(refused["fields"]) == ["price_cents"] and "new offer" in refused["fields"]["price_cents"][0]
    archived = shop("POST", "/offers/mensal/archive")
    assert archived.status_code == 200 and archived.json()["offer"]["status"] == "archived"
    assert [o["id"] for o in shop("GET", "/offers", status="active").json()["offers"]] == ["anual"]
    assert list(assert_json_error(shop("POST", "/subscriptions", sale("mensal")), 400)["fields"]) == ["offer_id"]

    wait_until(lambda: receiver.requests, message="the sale's webhook")
    page = wait_until(lambda: (found := shop("GET", "/webhooks/deliveries", status="delivered").json())["deliveries"]
                      and found, message="the delivery listed as delivered")
    [delivery] = page["deliveries"]
    assert page["next_cursor"] is None
    assert (delivery["event_type"], delivery["url"], delivery["attempts"]) == ("subscription_created", receiver.url, 1)
    assert delivery["log"][0]["status_code"] == 200 and delivery["last_error"] is None
    assert shop("GET", "/webhooks/deliveries", event_type="order_paid").json()["deliveries"] == []
    replayed = shop("POST", f"/webhooks/deliveries/{delivery['id']}/replay")
    assert replayed.status_code == 200 and replayed.json()["delivery"]["id"] == delivery["id"]
    wait_until(lambda: len(receiver.requests) == 2, message="the replay")

    # Another merchant's key reaches none of it.
    for method, path, body in (("PATCH", "/offers/anual", {"plan_name": "x"}), ("POST", "/offers/anual/archive", None),
                               ("PUT", "/offers/anual/plan-change-options", {"plan_change_options": []}),
                               ("POST", f"/webhooks/deliveries/{delivery['id']}/replay", None)):
        assert_json_error(other(method, path, body), 404)
    assert other("GET", "/offers").json() == {"offers": [], "next_cursor": None}
    assert other("GET", "/webhooks/deliveries").json() == {"deliveries": [], "next_cursor": None}
    assert list(assert_json_error(other("GET", "/webhooks/deliveries", cursor=delivery["id"]), 400)["fields"]) == [
        "cursor"]
    assert shop("GET", "/offers").json()["offers"][0]["plan_name"] == "anual"

    # Every change the merchant made is announced as its own, and only those.
    changes = [announced.get(timeout=10).payload["data"] for _ in range(4)]
    assert [(c["offer_id"], c["change"], c["actor"]) for c in changes] == [
        ("mensal", "created", "merchant"), ("anual", "created", "merchant"), ("mensal", "updated", "merchant"),
        ("mensal", "archived", "merchant")]
    assert changes[2]["changed"] == ["plan_name", "price_cents"] and changes[2]["price_cents"] == 4490
    assert announced.qsize() == 0
