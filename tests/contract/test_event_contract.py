"""One test per event type: a plain pika consumer, bound before the action, receives
exactly the envelope and the data fields docs/events.md documents, with the
documented exchange, routing key and version. Each action is driven as the product
drives it: a checkout's intake and the merchant API, a buyer's requests over HTTP
(logged in by SSO), billing's card form, the sandbox's "pay", the renewal job."""
import os
import subprocess
import sys
from datetime import timedelta

import pytest
import requests
from services.common.rpc import ClusterRpcProxy

from services.common.envelope import EnvelopeSchema
from support.event_docs import documented_events, published_event_types
from support.merchant_api import merchant_call, new_buyer, new_merchant, sso_session
from support.portal_client import TIMEOUT
from support.system import BROKER

RETURN_URL = "https://loja.example.com/conta"
EVERYTHING_ALLOWED = {
    "customer_can_change_payment_method": True, "customer_can_change_plan": True, "customer_can_cancel": True,
    "payment_methods_allowed": ["credit_card", "boleto", "pix"], "allowed_origins": ["https://loja.example.com"],
}
DECLINED_CARD = "4000000000000002"


def covers(*event_types):
    """The event types a test receives and checks (every published type has one)."""

    def mark(test):
        test.covers = event_types
        return test

    return mark


def assert_as_documented(message):
    """The message is what docs/events.md says an event of its type is."""
    exchange, routing_key, properties, envelope = message
    documented = documented_events()[envelope["type"]]
    _service, event_type = published_event_types()[envelope["type"]]
    assert (exchange, routing_key) == (documented["exchange"], documented["routing_key"])
    assert envelope["version"] == documented["version"] == event_type.version
    assert set(envelope) == set(documented["example"])
    assert EnvelopeSchema().validate(envelope) == {}
    # The data schema refuses unknown keys: the data holds the documented fields and no others.
    assert event_type.data_schema.validate(envelope["data"]) == {}
    assert set(envelope["data"]) == set(documented["example"]["data"])
    assert properties.delivery_mode == 2 and properties.message_id == envelope["event_id"]
    assert properties.content_type == "application/json"
    return envelope


def open_shop(system, cancel_mode):
    """A merchant that lets buyers do everything, monthly and annual plans switching to each other."""
    merchant_id, key = new_merchant(system, cancel_mode=cancel_mode, **EVERYTHING_ALLOWED)
    for offer_id, other in (("mensal", "anual"), ("anual", "mensal")):
        answer = merchant_call(system, "PUT", f"/offers/{offer_id}/plan-change-options", key,
                               {"plan_change_options": [other]})
        assert answer.status_code == 200, answer.text
    return merchant_id, key


@pytest.fixture(scope="module")
def shop(system):
    return open_shop(system, "at_period_end")


@pytest.fixture(scope="module")
def instant_shop(system):
    """Its buyers' cancellations take effect at once."""
    return open_shop(system, "immediately")


def buyer_session(system, shop, **sale):
    _merchant_id, key = shop
    email, subscription, order = new_buyer(system, key, **sale)
    return email, subscription, order, sso_session(system, key, email, RETURN_URL)


def me(system, path):
    return f"{system.gateway_url}/api/v1/me/subscriptions/{path}"


def run_renewals(system):
    with ClusterRpcProxy({"AMQP_URI": f"{BROKER}/{system.vhost}"}, timeout=30) as rpc:
        return rpc.subscriptions.run_renewals()


def enter_card(system, session, subscription_id, number):
    """The buyer types a card into billing's form (opened from the subscription's page)."""
    opened = session.post(me(system, f"{subscription_id}/card-entry"), timeout=TIMEOUT)
    assert opened.status_code == 201, opened.text
    form_url = opened.json()["form_url"]
    ticket = form_url.split("ticket=", 1)[1]
    submitted = requests.post(form_url.split("?", 1)[0], timeout=TIMEOUT, data={
        "ticket": ticket, "number": number, "expiry": "12/39", "security_code": "123", "holder_name": "Elisa Prado",
    })
    assert submitted.status_code == 200, submitted.text


# -- subscriptions

@covers("subscription_created")
def test_subscription_created(system, shop, consumer):
    _email, subscription, _order, _session = buyer_session(system, shop)
    envelope = assert_as_documented(consumer.expect("subscription_created", subscription_id=subscription["id"]))
    assert envelope["merchant_id"] == shop[0]


@covers("subscription_payment_method_changed")
def test_subscription_payment_method_changed(system, shop, consumer):
    _email, subscription, _order, session = buyer_session(system, shop)
    answer = session.post(me(system, f"{subscription['id']}/payment-method"), json={"method": "boleto"}, timeout=TIMEOUT)
    assert answer.status_code == 200, answer.text
    envelope = assert_as_documented(consumer.expect("subscription_payment_method_changed",
                                                    subscription_id=subscription["id"]))
    assert envelope["data"]["method"] == "boleto" and envelope["data"]["actor"] == "buyer"


@covers("subscription_cancellation_scheduled", "subscription_cancellation_undone")
def test_subscription_cancellation_scheduled_and_undone(system, shop, consumer):
    _email, subscription, _order, session = buyer_session(system, shop)
    assert session.post(me(system, f"{subscription['id']}/cancel"), json={"reason": "too_expensive"},
                        timeout=TIMEOUT).status_code == 200
    scheduled = assert_as_documented(consumer.expect("subscription_cancellation_scheduled",
                                                     subscription_id=subscription["id"]))
    assert scheduled["data"]["feedback"] == "too_expensive"
    assert session.delete(me(system, f"{subscription['id']}/cancel"), timeout=TIMEOUT).status_code == 200
    assert_as_documented(consumer.expect("subscription_cancellation_undone", subscription_id=subscription["id"]))


@covers("subscription_canceled")
def test_subscription_canceled(system, instant_shop, consumer):
    _email, subscription, _order, session = buyer_session(system, instant_shop)
    assert session.post(me(system, f"{subscription['id']}/cancel"), json={}, timeout=TIMEOUT).status_code == 200
    envelope = assert_as_documented(consumer.expect("subscription_canceled", subscription_id=subscription["id"]))
    assert envelope["data"]["reason"] == "buyer"


@covers("subscription_cancellation_scheduled", "subscription_cancellation_undone", "subscription_canceled")
def test_the_merchants_support_cancels_and_undoes_with_the_same_events(system, shop, consumer):
    """The merchant acting for its buyer (the support API) sends what the buyer's own
    action sends, with `actor` `merchant`."""
    _merchant_id, key = shop
    _email, subscription, _order = new_buyer(system, key)
    path = f"/subscriptions/{subscription['id']}/cancel"
    assert merchant_call(system, "POST", path, key, {"at_period_end": True}).status_code == 200
    scheduled = assert_as_documented(consumer.expect("subscription_cancellation_scheduled",
                                                     subscription_id=subscription["id"]))
    assert merchant_call(system, "DELETE", path, key).status_code == 200
    undone = assert_as_documented(consumer.expect("subscription_cancellation_undone",
                                                  subscription_id=subscription["id"]))
    assert merchant_call(system, "POST", path, key, {"at_period_end": False}).status_code == 200
    canceled = assert_as_documented(consumer.expect("subscription_canceled", subscription_id=subscription["id"]))
    assert [envelope["data"]["actor"] for envelope in (scheduled, undone, canceled)] == ["merchant"] * 3
    assert canceled["data"]["reason"] == "merchant"


@covers("subscription_plan_changed")
def test_subscription_plan_changed(system, shop, consumer):
    _email, subscription, _order, session = buyer_session(system, shop)
    quote = session.post(me(system, f"{subscription['id']}/plan-change/quote"), json={"offer_id": "anual"},
                         timeout=TIMEOUT)
    assert quote.status_code == 201, quote.text
    changed = session.post(me(system, f"{subscription['id']}/plan-change"),
                           json={"quote_id": quote.json()["quote"]["quote_id"], "installments": 1}, timeout=TIMEOUT)
    assert changed.status_code == 200, changed.text
    envelope = assert_as_documented(consumer.expect("subscription_plan_changed", subscription_id=subscription["id"]))
    assert (envelope["data"]["from_offer_id"], envelope["data"]["to_offer_id"]) == ("mensal", "anual")


@covers("subscription_plan_change_scheduled", "subscription_plan_change_dropped")
def test_subscription_plan_change_scheduled_and_dropped(system, shop, consumer):
    _email, subscription, _order, session = buyer_session(system, shop, offer_id="anual")
    quote = session.post(me(system, f"{subscription['id']}/plan-change/quote"), json={"offer_id": "mensal"},
                         timeout=TIMEOUT)
    assert quote.status_code == 201, quote.text
    assert session.post(me(system, f"{subscription['id']}/plan-change"),
                        json={"quote_id": quote.json()["quote"]["quote_id"]}, timeout=TIMEOUT).status_code == 200
    scheduled = assert_as_documented(consumer.expect("subscription_plan_change_scheduled",
                                                     subscription_id=subscription["id"]))
    assert scheduled["data"]["takes_effect"] == "cycle_end"
    assert session.delete(me(system, f"{subscription['id']}/plan-change"), timeout=TIMEOUT).status_code == 200
    dropped = assert_as_documented(consumer.expect("subscription_plan_change_dropped",
                                                   subscription_id=subscription["id"]))
    assert dropped["data"]["why"] == "undone"


@covers("subscription_renewed")
def test_subscription_renewed(system, shop, consumer):
    # Its first month ended yesterday: the renewal job charges the next one.
    _email, subscription, _order, _session = buyer_session(system, shop, started=timedelta(days=32))
    run_renewals(system)
    envelope = assert_as_documented(consumer.expect("subscription_renewed", subscription_id=subscription["id"]))
    assert envelope["data"]["cycle_number"] == 2


# -- billing (and the renewal that fails)

@covers("order_created", "order_paid")
def test_order_created_and_order_paid(system, shop, consumer):
    _email, _subscription, order, _session = buyer_session(system, shop)
    assert_as_documented(consumer.expect("order_created", code=order["code"]))
    assert_as_documented(consumer.expect("order_paid", code=order["code"]))


@covers("payment_method_added", "charge_failed", "subscription_past_due")
def test_payment_method_added_charge_failed_and_subscription_past_due(system, shop, consumer):
    _email, subscription, _order, session = buyer_session(system, shop, started=timedelta(days=32))
    enter_card(system, session, subscription["id"], DECLINED_CARD)
    added = assert_as_documented(consumer.expect("payment_method_added", last4="0002"))
    assert "number" not in added["data"] and DECLINED_CARD not in str(added)
    run_renewals(system)
    failed = assert_as_documented(consumer.expect("charge_failed", subscription_id=subscription["id"]))
    assert failed["data"]["decline_reason"] == "card_declined"
    past_due = assert_as_documented(consumer.expect("subscription_past_due", subscription_id=subscription["id"]))
    assert past_due["data"]["attempts"] == 1
    # The next retry, a day after this first failed attempt.
    assert past_due["data"]["next_retry_at"] > failed["occurred_at"]
    assert (past_due["data"]["amount_cents"], past_due["data"]["order_code"]) == (
        failed["data"]["amount_cents"], failed["data"]["code"])


@covers("order_awaiting_payment", "subscription_payment_not_applied")
def test_order_awaiting_payment_and_subscription_payment_not_applied(system, instant_shop, consumer):
    # A boleto renewal issued, unpaid: past due. The buyer cancels, then pays it anyway.
    _email, subscription, _order, session = buyer_session(system, instant_shop, started=timedelta(days=32))
    answer = session.post(me(system, f"{subscription['id']}/payment-method"), json={"method": "boleto"}, timeout=TIMEOUT)
    assert answer.status_code == 200, answer.text
    run_renewals(system)
    issued = consumer.expect("order_created", subscription_id=subscription["id"], kind="renewal")[3]
    payable = assert_as_documented(consumer.expect("order_awaiting_payment", code=issued["data"]["code"]))
    assert (payable["data"]["status"], payable["data"]["method"]) == ("pending", "boleto")
    assert session.post(me(system, f"{subscription['id']}/cancel"), json={}, timeout=TIMEOUT).status_code == 200
    paid = requests.post(f"http://127.0.0.1:{system.billing_port}/sandbox/orders/{issued['data']['code']}/pay",
                         timeout=TIMEOUT)
    assert paid.status_code == 200, paid.text
    envelope = assert_as_documented(consumer.expect("subscription_payment_not_applied",
                                                    subscription_id=subscription["id"]))
    assert (envelope["data"]["order_code"], envelope["data"]["kind"]) == (issued["data"]["code"], "renewal")


@covers("processor_account_changed")
def test_processor_account_changed(system, shop, consumer):
    merchant_id, _key = shop
    owner = f"dona+{merchant_id}@example.com"
    # What an operator runs; a sandbox account takes no secret.
    set_account = subprocess.run(
        [sys.executable, "-m", "portalctl.cli", "processor-accounts", "set", "--merchant", merchant_id,
         "--processor", "sandbox", "--environment", "sandbox", "--notify", owner],
        env={**os.environ, "AMQP_URI": f"{BROKER}/{system.vhost}"}, capture_output=True, text=True, timeout=60,
    )
    assert set_account.returncode == 0, set_account.stderr
    changed = assert_as_documented(consumer.expect("processor_account_changed", notify=[owner]))
    assert (changed["merchant_id"], changed["data"]["change"]) == (merchant_id, "created")
    assert_as_documented(consumer.expect("email_sent", recipient=owner, kind="processor_account_changed"))


@covers("offer_changed")
def test_offer_changed(system, shop, consumer):
    _merchant_id, key = shop
    answer = merchant_call(system, "POST", "/offers", key, {
        "id": "trimestral", "product_name": "Clube", "plan_name": "Trimestral", "price_cents": 10990,
        "periodicity_months": 3, "payment_methods_accepted": ["credit_card", "pix"]})
    assert answer.status_code == 201, answer.text
    changed = assert_as_documented(consumer.expect("offer_changed", offer_id="trimestral"))
    assert (changed["data"]["change"], changed["data"]["actor"]) == ("created", "merchant")


# -- auth and notifications

@covers("login_link_requested", "session_started", "email_sent")
def test_login_link_requested_session_started_and_email_sent(system, shop, consumer):
    email, _subscription, _order, _session = buyer_session(system, shop)
    assert_as_documented(consumer.expect("session_started", email=email))
    answer = requests.post(f"{system.gateway_url}/api/v1/auth/login-links", json={"email": email}, timeout=TIMEOUT)
    assert answer.status_code == 202
    requested = assert_as_documented(consumer.expect("login_link_requested", email=email))
    assert (requested["merchant_id"], requested["data"]["actor"]) == (None, "buyer")
    assert_as_documented(consumer.expect("email_sent", recipient=email, kind="login_link"))
    # The merchant's support asks for it again: the same event, the merchant as the actor.
    merchant_id, key = shop
    assert merchant_call(system, "POST", f"/customers/{email}/login-link", key).status_code == 202
    again = assert_as_documented(consumer.expect("login_link_requested", email=email, actor="merchant"))
    assert again["merchant_id"] == merchant_id


@covers("email_failed")
def test_email_failed(system, shop, consumer, mail_server):
    _merchant_id, key = shop
    email, _subscription, _order = new_buyer(system, key)
    mail_server.rcpt_reply = "550 5.1.1 No such user here"
    try:
        requests.post(f"{system.gateway_url}/api/v1/auth/login-links", json={"email": email}, timeout=TIMEOUT)
        envelope = assert_as_documented(consumer.expect("email_failed", recipient=email))
    finally:
        mail_server.rcpt_reply = "250 ok"
    assert "550" in envelope["data"]["error"]


@covers("webhook_failed")
def test_webhook_failed(system, consumer, failing_endpoint):
    merchant_id, key = new_merchant(system)
    configured = merchant_call(system, "PUT", "/webhooks", key, {
        "endpoints": [{"url": failing_endpoint, "event_types": ["subscription_created"]}]})
    assert configured.status_code == 200, configured.text
    _email, subscription, _order = new_buyer(system, key)
    created = consumer.expect("subscription_created", subscription_id=subscription["id"])
    envelope = assert_as_documented(consumer.expect("webhook_failed", event_id=created[3]["event_id"], timeout=60))
    assert envelope["merchant_id"] == merchant_id and envelope["data"]["last_status_code"] == 500


def test_every_published_event_type_has_its_contract_test():
    covered = {event_type for test in globals().values() for event_type in getattr(test, "covers", ())}
    assert covered == set(published_event_types())



@covers("order_refunded", "refund_failed")
def test_order_refunded_and_refund_failed(system, shop, consumer):
    """A renewal charged to a card, refunded in part through the merchant API and
    confirmed by the reconciler; a renewal charged to the card whose refunds fail."""
    _merchant_id, key = shop
    refunded = {}
    for card in (None, "4000000000005126"):
        _email, subscription, _order, session = buyer_session(system, shop, started=timedelta(days=32))
        if card:
            enter_card(system, session, subscription["id"], card)
        run_renewals(system)
        charged = consumer.expect("order_paid", subscription_id=subscription["id"], kind="renewal")[3]
        answer = merchant_call(system, "POST", f"/orders/{charged['data']['code']}/refunds", key,
                               {"amount_cents": 1000, "reason": "Desistência"}, {"Idempotency-Key": f"rf-{charged['data']['code']}"})
        assert answer.status_code == 201 and answer.json()["refund"]["status"] == "pending", answer.text
        refunded[card] = charged["data"]["code"]
    with ClusterRpcProxy({"AMQP_URI": f"{BROKER}/{system.vhost}"}, timeout=30) as rpc:
        rpc.billing.reconcile()
    done = assert_as_documented(consumer.expect("order_refunded", code=refunded[None]))
    assert (done["data"]["order_status"], done["data"]["refunded_cents"]) == ("partially_refunded", 1000)
    failed = assert_as_documented(consumer.expect("refund_failed", code=refunded["4000000000005126"]))
    assert (failed["data"]["failure_reason"], failed["data"]["order_status"]) == ("refund_declined", "paid")
