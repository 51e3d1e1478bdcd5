"""schemathesis against /api/v1/openapi.json of a running portal on PostgreSQL, as a
buyer (session token) and as a merchant (API key): bounded examples with a fixed
seed, no server error (5xx) and no answer that breaks the document. Then probes
across buyers and across merchants: each gets 404 for the other's objects."""
from collections import Counter

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance, response_schema_conformance, status_code_conformance,
)

from gateway.openapi import ROUTES
from support.merchant_api import merchant_call, new_buyer, new_merchant
from support.portal_client import TIMEOUT, assert_json_error, log_in

CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance]
# Logging out would end the fuzzing buyer's session for every example after it.
NOT_FUZZED = {("DELETE", "/api/v1/auth/sessions/current")}
MAX_EXAMPLES = 25
STATUSES = Counter()


@pytest.fixture(scope="module")
def credentials(fuzz_system):
    """A merchant with a buyer, who is logged in: {"merchant": API key, "buyer": session token}."""
    _merchant_id, key = new_merchant(fuzz_system, customer_can_cancel=True, customer_can_change_plan=True)
    email, _subscription, _order = new_buyer(fuzz_system, key)
    _session, _token, started = log_in(fuzz_system, email)
    return {"merchant": key, "buyer": started.json()["session_token"]}


@pytest.fixture(scope="module")
def api_document(fuzz_system):
    return schemathesis.openapi.from_url(f"{fuzz_system.gateway_url}/api/v1/openapi.json")


@pytest.mark.parametrize("method, path", [
    (route.method, route.path) for route in ROUTES if (route.method, route.path) not in NOT_FUZZED
])
def test_no_server_error_and_every_answer_as_documented(fuzz_system, api_document, credentials, method, path):
    operation = api_document[path][method]
    credential = credentials["merchant" if path.startswith("/api/v1/merchant/") else "buyer"]
    # Valid requests, and requests the document says are wrong, in turn.
    cases = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))

    @given(case=cases)
    @settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def fuzz(case):
        response = case.call_and_validate(
            base_url=fuzz_system.gateway_url, headers={"Authorization": f"Bearer {credential}"}, checks=CHECKS,
        )
        STATUSES[response.status_code] += 1

    fuzz()


def test_fuzzing_sent_requests_and_none_failed(fuzz_system):
    """The count of what the fuzzing sent, by status (a failure above fails its own test)."""
    print(f"\nschemathesis: {sum(STATUSES.values())} requests, by status {dict(sorted(STATUSES.items()))}")
    assert sum(STATUSES.values()) > 0
    assert not [status for status in STATUSES if status >= 500]


def test_buyers_and_merchants_get_404_for_each_others_objects(fuzz_system):
    first_merchant, first_key = new_merchant(fuzz_system, customer_can_cancel=True)
    _second_merchant, second_key = new_merchant(fuzz_system)
    _email, subscription, order = new_buyer(fuzz_system, first_key)
    other_email, _other_subscription, _other_order = new_buyer(fuzz_system, first_key)
    other, _token, _started = log_in(fuzz_system, other_email)

    base = f"{fuzz_system.gateway_url}/api/v1/me"
    for method, path in (
        ("GET", f"/subscriptions/{subscription['id']}"),
        ("GET", f"/subscriptions/{subscription['id']}/activity"),
        ("GET", f"/subscriptions/{subscription['id']}/plan-options"),
        ("POST", f"/subscriptions/{subscription['id']}/cancel"),
        ("GET", f"/orders/{order['code']}"),
    ):
        assert_json_error(other.request(method, base + path, timeout=TIMEOUT), 404)
    assert subscription["id"] not in other.get(f"{base}/subscriptions", timeout=TIMEOUT).text

    # A merchant's key does not reach another merchant's offers (beta-pro-mensal is the demo's Beta).
    for key in (first_key, second_key):
        refused = merchant_call(fuzz_system, "PUT", "/offers/beta-pro-mensal/plan-change-options", key,
                                {"plan_change_options": []})
        assert_json_error(refused, 404)
    answer = merchant_call(fuzz_system, "PUT", "/offers/mensal/plan-change-options", second_key,
                           {"plan_change_options": ["anual"]})
    assert answer.status_code == 200  # its own offer of that id
    offers = merchant_call(fuzz_system, "GET", "/offers", first_key).json()["offers"]
    assert next(offer for offer in offers if offer["id"] == "mensal")["plan_change_options"] == []
    # Nor the catalog's routes: another merchant's offer or delivery is not found.
    for method, path, body in (("PATCH", "/offers/beta-pro-mensal", {"plan_name": "x"}),
                               ("POST", "/offers/beta-pro-mensal/archive", None),
                               ("POST", "/webhooks/deliveries/00000000-0000-4000-8000-000000000000/replay", None)):
        assert_json_error(merchant_call(fuzz_system, method, path, first_key, body), 404)
    assert first_merchant not in merchant_call(fuzz_system, "GET", "/settings", second_key).text
    # Nor the support API's: another merchant's buyer and subscription are not found.
    acting = f"/subscriptions/{subscription['id']}"
    for method, path, body in (("GET", f"{acting}/activity", None),
                               ("POST", f"{acting}/cancel", {"at_period_end": False}),
                               ("DELETE", f"{acting}/cancel", None),
                               ("POST", f"{acting}/plan-change/quote", {"offer_id": "anual"}),
                               ("POST", f"/customers/{other_email}/login-link", None)):
        assert_json_error(merchant_call(fuzz_system, method, path, second_key, body), 404)
    for path, listed in ((f"/customers?email={other_email}", "customers"),
                         (f"/customers/{other_email}/subscriptions", "subscriptions")):
        assert merchant_call(fuzz_system, "GET", path, second_key).json() == {listed: [], "next_cursor": None}
        assert merchant_call(fuzz_system, "GET", path, first_key).json()[listed] != []
    assert requests.get(f"{fuzz_system.gateway_url}/api/docs", timeout=TIMEOUT).status_code == 200
