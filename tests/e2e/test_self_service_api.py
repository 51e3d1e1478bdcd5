"""The self-service operations over HTTP against the whole system (real billing and its
sandbox processor): upgrade in installments, a scheduled downgrade undone, a
cancellation at period end undone, Beta's disabled options refused, and an
Idempotency-Key replayed only to the merchant scope that sent it.

Each test registers its own buyer through the checkout intake (so the demo buyers
other modules look at stay as they are), then logs in from the real e-mail.
"""
import time
import uuid
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from services.common.rpc import ClusterRpcProxy

from services.common import clock
from support import secret_scan
from support.card_entry import card_form
from support.login_flow import create_api_key
from support.portal_client import TIMEOUT, assert_json_error, log_in, register_subscription


@pytest.fixture(scope="module")
def intake(system):
    """The checkout's side: registers a subscription (and its paid first order) for a new buyer."""
    with ClusterRpcProxy({"AMQP_URI": system.amqp_uri}, timeout=30) as rpc:

        def register(offer_id, periodicity_months, price_cents, started=timedelta(days=10)):
            email = f"e2e-{uuid.uuid4().hex[:10]}@example.com"
            return email, register_subscription(rpc, email, offer_id, periodicity_months, price_cents, started)

        yield register


def buyer_session(system, email):
    """A logged-in API client (it sends its CSRF token, as the portal's pages do)."""
    return log_in(system, email)[0]


def merchant_session(system, merchant_id, email, return_url):
    """An API client in a session scoped to `merchant_id`, opened by its SSO ticket."""
    key = create_api_key(system, merchant_id)
    issued = requests.post(
        f"{system.gateway_url}/api/v1/merchant/sso-tickets", headers={"Authorization": f"Bearer {key}"},
        json={"email": email, "return_url": return_url}, timeout=TIMEOUT,
    )
    assert issued.status_code == 201, issued.text
    ticket = issued.json()["url"].rsplit("/", 1)[1]
    started = requests.get(f"{system.gateway_url}/api/v1/sso/{ticket}", timeout=TIMEOUT)
    assert started.status_code == 200, started.text
    client = requests.Session()
    client.headers["Authorization"] = f"Bearer {started.json()['session_token']}"
    return client


def test_quote_and_upgrade_to_annual_in_installments(system, intake):
    email, subscription_id = intake("acme-basico-mensal", 1, 2990)
    buyer = buyer_session(system, email)
    base = f"{system.gateway_url}/api/v1/me/subscriptions/{subscription_id}"

    options = buyer.get(f"{base}/plan-options", timeout=TIMEOUT).json()
    assert {option["id"]: option["kind"] for option in options["options"]} == {
        "acme-premium-mensal": "upgrade", "acme-premium-anual": "new_cycle"}

    monthly = buyer.post(f"{base}/plan-change/quote", json={"offer_id": "acme-premium-mensal"}, timeout=TIMEOUT)
    assert monthly.status_code == 201 and monthly.json()["quote"]["max_installments"] == 1
    above = buyer.post(f"{base}/plan-change", json={"quote_id": monthly.json()["quote"]["quote_id"], "installments": 2},
                       timeout=TIMEOUT)
    assert "1x" in assert_json_error(above, 422, "installments_above_cap")["message"]

    answer = buyer.post(f"{base}/plan-change/quote", json={"offer_id": "acme-premium-anual"}, timeout=TIMEOUT)
    quote = answer.json()["quote"]
    assert (quote["kind"], quote["takes_effect"], quote["max_installments"]) == ("new_cycle", "now", 12)
    assert 0 < quote["charge_cents"] < 59900

    confirm = {"quote_id": quote["quote_id"], "installments": 12}
    headers = {"Idempotency-Key": f"upgrade-{uuid.uuid4().hex}"}
    changed = buyer.post(f"{base}/plan-change", json=confirm, headers=headers, timeout=TIMEOUT)
    assert changed.status_code == 200, changed.text
    repeated = buyer.post(f"{base}/plan-change", json=confirm, headers=headers, timeout=TIMEOUT)
    assert repeated.json() == changed.json()
    other_body = buyer.post(f"{base}/plan-change", json={**confirm, "installments": 6}, headers=headers, timeout=TIMEOUT)
    assert_json_error(other_body, 422, "idempotency_key_reused")

    result = changed.json()
    assert (result["order"]["status"], result["order"]["amount_cents"], result["order"]["installments"]) == (
        "paid", quote["charge_cents"], 12)
    subscription = result["subscription"]
    assert (subscription["offer_id"], subscription["cycle"]["number"], subscription["installments"]) == (
        "acme-premium-anual", 2, 12)
    assert subscription["next_charge_at"] == quote["next_renewal_at"]

    orders = buyer.get(f"{system.gateway_url}/api/v1/me/orders", timeout=TIMEOUT).json()["orders"]
    plan_change_orders = [order for order in orders if order.get("kind") == "plan_change"]
    assert [(order["amount_cents"], order["status"]) for order in plan_change_orders] == [(quote["charge_cents"], "paid")]
    activity = buyer.get(f"{base}/activity", timeout=TIMEOUT).json()["activity"]
    assert (activity[0]["action"], activity[0]["actor"]) == ("plan_changed", "buyer")

    spent = buyer.post(f"{base}/plan-change", json=confirm, timeout=TIMEOUT)
    assert_json_error(spent, 409, "quote_expired")


def test_a_downgrade_is_scheduled_and_undone(system, intake):
    email, subscription_id = intake("acme-premium-anual", 12, 59900, started=timedelta(days=40))
    buyer = buyer_session(system, email)
    base = f"{system.gateway_url}/api/v1/me/subscriptions/{subscription_id}"

    quote = buyer.post(f"{base}/plan-change/quote", json={"offer_id": "acme-basico-mensal"}, timeout=TIMEOUT).json()["quote"]
    assert (quote["kind"], quote["charge_cents"], quote["takes_effect"]) == ("scheduled", 0, "cycle_end")
    scheduled = buyer.post(f"{base}/plan-change", json={"quote_id": quote["quote_id"]}, timeout=TIMEOUT)
    assert scheduled.status_code == 200, scheduled.text
    pending = scheduled.json()["subscription"]["pending_plan_change"]
    assert (pending["offer"]["id"], pending["status"]) == ("acme-basico-mensal", "scheduled")
    assert datetime.fromisoformat(pending["effective_at"]) > clock.now()

    undone = buyer.delete(f"{base}/plan-change", timeout=TIMEOUT)
    assert undone.status_code == 200 and undone.json()["subscription"]["pending_plan_change"] is None
    assert_json_error(buyer.delete(f"{base}/plan-change", timeout=TIMEOUT), 422, "no_pending_change")
    actions = [item["action"] for item in buyer.get(f"{base}/activity", timeout=TIMEOUT).json()["activity"]]
    assert actions[:2] == ["plan_change_dropped", "plan_change_scheduled"]


def test_a_cancellation_at_period_end_is_undone(system, intake):
    email, subscription_id = intake("acme-basico-mensal", 1, 2990)
    buyer = buyer_session(system, email)
    base = f"{system.gateway_url}/api/v1/me/subscriptions/{subscription_id}"

    bad = buyer.post(f"{base}/cancel", json={"reason": "bored"}, timeout=TIMEOUT)
    assert "reason" in assert_json_error(bad, 400)["fields"]
    canceled = buyer.post(f"{base}/cancel", json={"reason": "not_using", "comment": "Sem tempo."}, timeout=TIMEOUT)
    assert canceled.status_code == 200, canceled.text
    subscription = canceled.json()["subscription"]
    assert (subscription["status"], subscription["cancel_at_period_end"], subscription["cancel_feedback"]) == (
        "active", True, "not_using")

    undone = buyer.delete(f"{base}/cancel", timeout=TIMEOUT).json()["subscription"]
    assert (undone["cancel_at_period_end"], undone["next_charge_at"]) == (False, undone["cycle"]["end"])

    # Another buyer cannot touch it; a forged request is refused before anything runs.
    other_email, _ = intake("acme-basico-mensal", 1, 2990)
    other = buyer_session(system, other_email)
    assert_json_error(other.post(f"{base}/cancel", json={}, timeout=TIMEOUT), 404)
    forged = buyer.post(f"{base}/cancel", json={}, headers={"X-CSRF-Token": "forged"}, timeout=TIMEOUT)
    assert_json_error(forged, 403, "csrf_token_invalid")


def test_beta_refuses_every_operation_it_turned_off(system):
    bruno = buyer_session(system, "bruno@example.com")
    listed = bruno.get(f"{system.gateway_url}/api/v1/me/subscriptions", timeout=TIMEOUT).json()["subscriptions"]
    [beta] = [item for item in listed if item["merchant"]["id"] == "beta-software"]
    base = f"{system.gateway_url}/api/v1/me/subscriptions/{beta['id']}"

    for answer in (
        bruno.get(f"{base}/plan-options", timeout=TIMEOUT),
        bruno.post(f"{base}/plan-change/quote", json={"offer_id": "beta-pro-mensal"}, timeout=TIMEOUT),
        bruno.post(f"{base}/payment-method", json={"method": "credit_card", "card_token": "tok_x"}, timeout=TIMEOUT),
        bruno.post(f"{base}/card-entry", timeout=TIMEOUT),
        bruno.post(f"{base}/cancel", json={"reason": "other"}, timeout=TIMEOUT),
        bruno.delete(f"{base}/cancel", timeout=TIMEOUT),
    ):
        assert_json_error(answer, 403, "operation_disabled")
    still = bruno.get(base, timeout=TIMEOUT).json()["subscription"]
    assert (still["status"], still["cancel_at_period_end"]) == ("past_due", False)


def test_an_idempotency_key_is_replayed_only_to_the_merchant_scope_that_sent_it(system, intake):
    """A buyer of Acme and of another store, in each store's SSO session, sends the same
    keys: the other store's session is answered for itself (Acme's subscription is not
    its to see), never with Acme's quote or card-entry link. Acme's repeats still get
    Acme's quote, and a fresh card-entry link that works; no link is kept."""
    email, subscription_id = intake("acme-basico-mensal", 1, 2990)
    other = f"e2e-loja-{uuid.uuid4().hex[:8]}"
    with ClusterRpcProxy({"AMQP_URI": system.amqp_uri}, timeout=30) as rpc:
        rpc.subscriptions.upsert_merchant({"id": other, "name": "Outra Loja", "allowed_origins": ["https://outra.example.com"]})
        for merchant_id in ("acme-cursos", other):
            rpc.subscriptions.upsert_contact({"merchant_id": merchant_id, "email": email})
    acme = merchant_session(system, "acme-cursos", email, "https://acme.example.com/minha-conta")
    elsewhere = merchant_session(system, other, email, "https://outra.example.com/conta")
    base = f"{system.gateway_url}/api/v1/me/subscriptions/{subscription_id}"

    quote_key = {"Idempotency-Key": f"quote-{uuid.uuid4().hex}"}
    quote = {"offer_id": "acme-premium-mensal"}
    quoted = acme.post(f"{base}/plan-change/quote", json=quote, headers=quote_key, timeout=TIMEOUT)
    assert quoted.status_code == 201, quoted.text
    assert_json_error(elsewhere.post(f"{base}/plan-change/quote", json=quote, headers=quote_key, timeout=TIMEOUT), 404)
    assert acme.post(f"{base}/plan-change/quote", json=quote, headers=quote_key, timeout=TIMEOUT).json() == quoted.json()

    card_key = {"Idempotency-Key": f"card-{uuid.uuid4().hex}"}
    opened = acme.post(f"{base}/card-entry", headers=card_key, timeout=TIMEOUT)
    assert opened.status_code == 201, opened.text
    assert_json_error(elsewhere.post(f"{base}/card-entry", headers=card_key, timeout=TIMEOUT), 404)
    again = acme.post(f"{base}/card-entry", headers=card_key, timeout=TIMEOUT)
    assert again.status_code == 201, again.text
    assert again.json()["form_url"] != opened.json()["form_url"]
    assert requests.get(again.json()["form_url"], timeout=TIMEOUT).status_code == 200
    assert secret_scan.scan_database(system.database_urls["subscriptions"]) == []


def test_the_card_entry_ticket_stays_out_of_every_log(system, intake):
    """The ticket is a one-time secret in the form's URL: no process writes it down,
    neither the portal that hands it out nor billing that serves the form."""
    email, subscription_id = intake("acme-basico-mensal", 1, 2990)
    buyer = buyer_session(system, email)
    opened = buyer.post(f"{system.gateway_url}/api/v1/me/subscriptions/{subscription_id}/card-entry", timeout=TIMEOUT)
    assert opened.status_code == 201, opened.text
    form_url = opened.json()["form_url"]
    [ticket] = parse_qs(urlsplit(form_url).query)["ticket"]

    form = requests.get(form_url, timeout=TIMEOUT)
    assert form.status_code == 200, form.text
    saved = requests.post(form_url.split("?", 1)[0], data=card_form(ticket, "4242424242424242"), timeout=TIMEOUT)
    assert saved.status_code == 200, saved.text

    wait_for_log_line(system, "POST /card ")
    assert "GET /card?" in system.log()
    assert ticket not in system.log()


def wait_for_log_line(system, text, timeout=10):
    deadline = time.monotonic() + timeout
    while text not in system.log():
        assert time.monotonic() < deadline, f"no {text!r} in the log"
        time.sleep(0.1)
