"""Forged requests against the whole system: refused with 403 before any RPC, which a
tap on the bus proves by seeing none of the gateway's RPC requests."""
import pytest
import requests

from support.bus_tap import BusTap, rpc_requests_from_gateway
from support.login_flow import create_api_key
from support.portal_client import TIMEOUT, assert_json_error, log_in
from support.system import BROKER


@pytest.fixture(scope="module")
def ana(system):
    """A logged-in browser: session cookie, and its CSRF token (not sent by default)."""
    session, _, started = log_in(system, "ana@example.com")
    token = session.headers.pop("X-CSRF-Token")
    return session, token, started.json()


@pytest.fixture
def tap(system):
    with BusTap(f"{BROKER}/{system.vhost}") as opened:
        opened.messages(quiet=0.3)
        yield opened


def forged_requests(system, ana_session, session_id):
    """(expected refusal, request) pairs: cross-site ones, and Ana's without her token."""
    url = system.gateway_url
    evil = {"Origin": "https://evil.example"}
    ticket = {"email": "ana@example.com", "return_url": "https://x.example"}

    def send(client, method, path, **kwargs):
        return lambda: client.request(method, f"{url}{path}", timeout=TIMEOUT, **kwargs)

    anonymous = requests.Session()
    return [
        ("cross_site_request", send(anonymous, "POST", "/api/v1/auth/login-links", json={"email": "ana@example.com"},
                                    headers={"Sec-Fetch-Site": "cross-site"})),
        ("cross_site_request", send(anonymous, "POST", "/entrar", data={"email": "ana@example.com"}, headers=evil)),
        ("cross_site_request", send(anonymous, "POST", "/api/v1/auth/sessions", json={"token": "t" * 43},
                                    headers={"Origin": "null"})),
        ("cross_site_request", send(ana_session, "DELETE", f"/api/v1/me/sessions/{session_id}", headers=evil)),
        ("cross_site_request", send(anonymous, "POST", "/api/v1/merchant/sso-tickets", json=ticket,
                                    headers={**evil, "Authorization": "Bearer pk_live_x"})),
        ("csrf_token_invalid", send(ana_session, "DELETE", "/api/v1/auth/sessions/current")),
        ("csrf_token_invalid", send(ana_session, "DELETE", f"/api/v1/me/sessions/{session_id}",
                                    headers={"X-CSRF-Token": "0" * 64})),
        ("csrf_token_invalid", send(ana_session, "POST", "/sair", data={"csrf_token": "forged"})),
        ("csrf_token_invalid", send(ana_session, "POST", "/entrar", data={"email": "ana@example.com"})),
    ]


def test_forged_requests_are_refused_before_any_rpc(system, ana, tap):
    session, _, started = ana

    for code, send in forged_requests(system, session, started["session"]["id"]):
        assert_json_error(send(), 403, code)

    assert rpc_requests_from_gateway(tap.messages()) == []
    # The session was not touched by any of them.
    assert session.get(f"{system.gateway_url}/api/v1/me/sessions", timeout=TIMEOUT).status_code == 200


def test_the_tap_sees_the_rpc_of_an_accepted_request(system, ana, tap):
    session, token, _ = ana

    listed = session.get(f"{system.gateway_url}/api/v1/me/sessions", timeout=TIMEOUT)
    asked = requests.post(f"{system.gateway_url}/api/v1/auth/login-links", json={"email": "ana@example.com"},
                          headers={"Origin": system.gateway_url, "Sec-Fetch-Site": "same-origin"}, timeout=TIMEOUT)

    assert listed.status_code == 200 and asked.status_code == 202
    assert rpc_requests_from_gateway(tap.messages()) == [
        "auth.get_session", "auth.list_sessions", "auth.request_login_link",
    ]


def test_the_csrf_token_of_the_session_lets_its_requests_through(system):
    session, _, started = log_in(system, "ana@example.com")  # sends X-CSRF-Token on every request
    page = session.get(f"{system.gateway_url}/pedidos", timeout=TIMEOUT)

    assert started.json()["csrf_token"] in page.text  # the pages' forms carry the same token
    assert session.delete(f"{system.gateway_url}/api/v1/auth/sessions/current", timeout=TIMEOUT).status_code == 204
    assert_json_error(session.get(f"{system.gateway_url}/api/v1/me/orders", timeout=TIMEOUT), 401)


def test_bearer_requests_need_no_csrf_token(system):
    _, _, started = log_in(system, "bruno@example.com")
    bearer = {"Authorization": f"Bearer {started.json()['session_token']}"}

    assert requests.delete(f"{system.gateway_url}/api/v1/auth/sessions/current", headers=bearer,
                           timeout=TIMEOUT).status_code == 204
    key = create_api_key(system, "acme-cursos")
    issued = requests.post(
        f"{system.gateway_url}/api/v1/merchant/sso-tickets", headers={"Authorization": f"Bearer {key}"},
        json={"email": "ana@example.com", "return_url": "https://acme.example.com/"}, timeout=TIMEOUT,
    )
    assert issued.status_code == 201, issued.text
