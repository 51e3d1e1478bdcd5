"""The first real path through the system, driven over HTTP exactly as a client would:
ask for a login link, read the real e-mail from the sink, redeem it, list orders."""
import os
import signal
import time
import uuid

import pytest
import requests

from support.portal_client import TIMEOUT, assert_json_error, bearer_get, inbox_ids, log_in, login_email

def test_a_buyer_logs_in_from_the_real_email_and_sees_only_her_orders(system):
    session, token, started = log_in(system, "ana@example.com")

    cookie = started.cookies.get("portal_session")
    assert cookie and cookie == started.json()["session_token"]
    set_cookie = started.headers["Set-Cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie and "Path=/" in set_cookie

    orders = session.get(f"{system.gateway_url}/api/v1/me/orders", timeout=TIMEOUT)
    assert orders.status_code == 200
    listed = orders.json()["orders"]
    assert len(listed) >= 3
    assert {order["buyer"]["email"] for order in listed} == {"ana@example.com"}
    statuses = {order["status"] for order in listed}
    assert {"paid", "pending"} <= statuses

    # Apps send the same session as a bearer token.
    bearer = requests.get(
        f"{system.gateway_url}/api/v1/me/orders",
        headers={"Authorization": f"Bearer {started.json()['session_token']}"}, timeout=TIMEOUT,
    )
    assert bearer.json()["orders"] == listed

    # Bruno's order codes are invisible to Ana.
    bruno, _, _ = log_in(system, "bruno@example.com")
    bruno_codes = [o["code"] for o in bruno.get(f"{system.gateway_url}/api/v1/me/orders", timeout=TIMEOUT).json()["orders"]]
    assert bruno_codes and not set(bruno_codes) & {o["code"] for o in listed}
    assert_json_error(session.get(f"{system.gateway_url}/api/v1/me/orders/{bruno_codes[0]}", timeout=TIMEOUT), 404)

    # A link works once.
    again = requests.post(f"{system.gateway_url}/api/v1/auth/sessions", json={"token": token}, timeout=TIMEOUT)
    assert_json_error(again, 401, "invalid_login_link")

    # Logging out ends the session on the server.
    assert session.delete(f"{system.gateway_url}/api/v1/auth/sessions/current", timeout=TIMEOUT).status_code == 204
    assert_json_error(bearer_get(system, started.json()["session_token"]), 401)


def test_the_link_is_built_from_the_configured_base_url(system):
    before = inbox_ids(system, "ana@example.com")
    requests.post(
        f"{system.gateway_url}/api/v1/auth/login-links", json={"email": "ana@example.com"},
        headers={"Host": "evil.example", "X-Forwarded-Host": "evil.example"}, timeout=TIMEOUT,
    )
    message = login_email(system, "ana@example.com", before)
    assert all("evil.example" not in link for link in message["links"])
    assert any(link.startswith(system.gateway_url + "/") for link in message["links"])


def test_an_unknown_email_gets_the_same_answer_and_no_email(system):
    known = requests.post(f"{system.gateway_url}/api/v1/auth/login-links", json={"email": "ana@example.com"}, timeout=TIMEOUT)
    unknown = requests.post(f"{system.gateway_url}/api/v1/auth/login-links", json={"email": "nobody@example.com"}, timeout=TIMEOUT)
    assert (known.status_code, known.json()) == (unknown.status_code, unknown.json())
    time.sleep(1)
    assert requests.get(f"{system.mail_url}/api/messages", params={"to": "nobody@example.com"}, timeout=TIMEOUT).json() == []


@pytest.mark.parametrize("body, field", [
    ({"email": "not-an-email"}, "email"),
    ({}, "email"),
    ({"email": "ana@example.com", "extra": 1}, "extra"),
])
def test_bad_login_requests_name_the_field(system, body, field):
    answer = requests.post(f"{system.gateway_url}/api/v1/auth/login-links", json=body, timeout=TIMEOUT)
    error = assert_json_error(answer, 400, "validation_error")
    assert field in error["fields"]


def test_bad_bodies_and_tokens_get_json_errors(system):
    url = system.gateway_url
    not_json = requests.post(f"{url}/api/v1/auth/login-links", data="email=ana", timeout=TIMEOUT)
    assert_json_error(not_json, 400, "invalid_json")
    unknown_token = requests.post(f"{url}/api/v1/auth/sessions", json={"token": "x" * 43}, timeout=TIMEOUT)
    assert_json_error(unknown_token, 401, "invalid_login_link")
    assert_json_error(requests.get(f"{url}/api/v1/me/orders", timeout=TIMEOUT), 401, "login_required")
    assert_json_error(requests.get(f"{url}/api/v1/nothing-here", timeout=TIMEOUT), 404)
    assert_json_error(requests.put(f"{url}/api/v1/auth/login-links", json={}, timeout=TIMEOUT), 405)


def test_ops_endpoints(system):
    assert requests.get(f"{system.gateway_url}/healthz", timeout=TIMEOUT).status_code == 200
    ready = requests.get(f"{system.gateway_url}/readyz", timeout=TIMEOUT)
    assert ready.status_code == 200 and ready.json()["broker"] == "connected"
    status = requests.get(f"{system.gateway_url}/status", timeout=TIMEOUT)
    assert status.status_code == 200
    assert status.json()["services"] == dict.fromkeys(["auth", "subscriptions", "billing", "notifications"], "ok")


def test_a_stopped_service_is_named_by_status_and_answers_503_not_a_hang(system):
    session, _, _ = log_in(system, "ana@example.com")
    billing = system.pid_of("services.billing.service")
    os.kill(billing, signal.SIGSTOP)
    try:
        status = requests.get(f"{system.gateway_url}/status", timeout=3 * system.rpc_timeout)
        error = assert_json_error_in_status(status)
        assert error["fields"]["services"] == ["billing"]
        assert requests.get(f"{system.gateway_url}/healthz", timeout=TIMEOUT).status_code == 200

        orders = session.get(f"{system.gateway_url}/api/v1/me/orders", timeout=3 * system.rpc_timeout)
        assert_json_error(orders, 503, "service_unavailable")
        subscriptions = session.get(f"{system.gateway_url}/api/v1/me/subscriptions", timeout=3 * system.rpc_timeout)
        assert subscriptions.status_code == 200
    finally:
        os.kill(billing, signal.SIGCONT)

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if requests.get(f"{system.gateway_url}/status", timeout=TIMEOUT).status_code == 200:
            break
        time.sleep(0.5)
    else:
        raise AssertionError("status did not recover after billing came back")
    assert session.get(f"{system.gateway_url}/api/v1/me/orders", timeout=TIMEOUT).status_code == 200


def assert_json_error_in_status(answer):
    assert answer.status_code == 503, answer.text
    body = answer.json()
    assert body["services"]["billing"] == "unavailable"
    return body["error"]


def test_one_request_id_is_on_the_log_lines_of_every_service_it_touched(system):
    request_id = f"e2e-{uuid.uuid4().hex[:12]}"
    answer = requests.post(
        f"{system.gateway_url}/api/v1/auth/login-links", json={"email": "ana@example.com"},
        headers={"X-Request-Id": request_id}, timeout=TIMEOUT,
    )
    assert answer.headers["X-Request-Id"] == request_id
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        tagged = [line for line in system.log().splitlines() if f"[{request_id}]" in line]
        if {"gateway", "auth", "subscriptions"} <= {line.split(".", 1)[0].split()[-1] for line in tagged}:
            break
        time.sleep(0.2)
    processes = {line.split(".", 1)[0].split()[-1] for line in tagged}
    assert {"gateway", "auth", "subscriptions"} <= processes, tagged
