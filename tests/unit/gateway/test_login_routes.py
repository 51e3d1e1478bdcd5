"""The gateway's side of logging in, with auth replaced: who the client is, which
cookies it gets, and what the link's page shows."""
from unittest.mock import MagicMock

import pytest
from nameko.testing.services import worker_factory
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from gateway import csrf
from gateway.service import GatewayService
from services.common.client_address import client_address, trusted_networks
from services.common.errors import Unauthorized

HTTPS_PORTAL = "https://portal.example.com"
STARTED = {
    "session_token": "new-session-token",
    "session": {"id": "s1", "email": "ana@example.com", "merchant_id": None,
                "created_at": "2026-05-04T12:00:00+00:00", "expires_at": "2026-05-05T00:00:00+00:00"},
}


def request_from(peer, forwarded=(), **builder):
    headers = [("X-Forwarded-For", value) for value in forwarded]
    environ = EnvironBuilder(headers=headers, environ_base={"REMOTE_ADDR": peer}, **builder).get_environ()
    return Request(environ)


# The client's address ------------------------------------------------------------------

def test_without_trusted_proxies_the_socket_peer_is_the_client():
    request = request_from("203.0.113.9", ["198.51.100.1"])
    assert client_address(request, trusted_networks("")) == "203.0.113.9"


def test_an_untrusted_peer_cannot_claim_another_address():
    request = request_from("203.0.113.9", ["198.51.100.1"])
    assert client_address(request, trusted_networks("10.0.0.0/8, 127.0.0.1")) == "203.0.113.9"


@pytest.mark.parametrize("forwarded, client", [
    (["198.51.100.1"], "198.51.100.1"),
    (["1.2.3.4, 198.51.100.1"], "198.51.100.1"),          # a client-written entry on the left is ignored
    (["1.2.3.4", "198.51.100.1, 10.0.0.7"], "198.51.100.1"),  # one header per proxy, and a trusted hop
    (["not-an-address, 10.0.0.7"], "10.0.0.7"),
    (["2001:db8::1"], "2001:db8::1"),
    ([], "10.0.0.2"),
])
def test_a_trusted_proxy_is_believed_up_to_the_first_untrusted_hop(forwarded, client):
    request = request_from("10.0.0.2", forwarded)
    assert client_address(request, trusted_networks("10.0.0.0/8")) == client


def test_trusted_proxies_are_ips_or_networks():
    assert [str(network) for network in trusted_networks(" 127.0.0.1 ,10.0.0.0/8,::1")] == [
        "127.0.0.1/32", "10.0.0.0/8", "::1/128",
    ]


# Cookies and the landing ----------------------------------------------------------------

@pytest.fixture
def gateway():
    config = {
        "PORTAL_BASE_URL": HTTPS_PORTAL, "TRUSTED_PROXIES": "", "LOGIN_LINK_TTL_SECONDS": 600,
        "SESSION_ABSOLUTE_SECONDS": 43200, "BILLING_PUBLIC_URL": "https://pay.portal.example.com",
    }
    return worker_factory(GatewayService, config=config, auth=MagicMock(), subscriptions=MagicMock())


def set_cookies(response):
    return {header.split("=", 1)[0]: header for header in response.headers.getlist("Set-Cookie")}


def post(path, cookies="", headers=None, **builder):
    headers = {**(headers or {}), **({"Cookie": cookies} if cookies else {})}
    return Request(EnvironBuilder(path=path, method="POST", headers=headers,
                                  environ_base={"REMOTE_ADDR": "203.0.113.9"}, **builder).get_environ())


def test_asking_for_a_link_binds_it_to_this_browser_with_a_host_only_nonce_cookie(gateway):
    response = gateway.request_login_link(post("/api/v1/auth/login-links", json={"email": "ana@example.com"}))

    assert response.status_code == 202
    nonce_cookie = set_cookies(response)["__Host-login_nonce"]
    nonce = nonce_cookie.split("=", 1)[1].split(";", 1)[0]
    assert len(nonce) >= 43
    for flag in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=600"):
        assert flag in nonce_cookie
    assert "Domain" not in nonce_cookie
    gateway.auth.request_login_link.assert_called_once_with("ana@example.com", client_address="203.0.113.9", nonce=nonce)


def test_a_new_session_cookie_is_host_only_and_secure_on_https_and_the_nonce_is_forgotten(gateway):
    gateway.auth.redeem_login.return_value = STARTED
    request = post("/api/v1/auth/sessions", cookies="__Host-login_nonce=n1", json={"token": "t" * 43},
                   headers={"User-Agent": "Firefox/140"})

    response = gateway.create_session(request)

    assert response.status_code == 201
    assert response.json["csrf_token"] == csrf.csrf_token("new-session-token")
    cookies = set_cookies(response)
    session_cookie = cookies["__Host-portal_session"]
    assert session_cookie.startswith("__Host-portal_session=new-session-token;")
    for flag in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=43200"):
        assert flag in session_cookie
    assert "Max-Age=0" in cookies["__Host-login_nonce"]
    assert response.headers["Cache-Control"] == "no-store"
    gateway.auth.redeem_login.assert_called_once_with(
        token="t" * 43, code=None, nonce="n1", user_agent="Firefox/140", client_address="203.0.113.9",
    )


def test_the_link_page_shows_whose_login_it_is_and_asks_for_the_code_without_the_nonce(gateway):
    gateway.auth.describe_login_link.return_value = {"email_hint": "a•••@example.com"}
    token = "t" * 43

    with_nonce = gateway.link_landing(Request(EnvironBuilder(
        path="/entrar", query_string={"token": token}, headers={"Cookie": "__Host-login_nonce=n1"},
    ).get_environ()))
    without = gateway.link_landing(Request(EnvironBuilder(path="/entrar", query_string={"token": token}).get_environ()))

    for page in (with_nonce, without):
        assert page.status_code == 200
        assert "Continuar como a•••@example.com" in page.get_data(as_text=True)
        assert page.headers["Referrer-Policy"] == "no-referrer"
        assert page.headers["Cache-Control"] == "no-store"
    assert 'name="code"' not in with_nonce.get_data(as_text=True)
    assert 'name="code"' in without.get_data(as_text=True)
    gateway.auth.redeem_login.assert_not_called()


def test_an_unusable_link_gets_a_friendly_page_that_is_not_cached(gateway):
    gateway.auth.describe_login_link.side_effect = Unauthorized("invalid", code="invalid_login_link")

    page = gateway.link_landing(Request(EnvironBuilder(path="/entrar", query_string={"token": "t" * 43}).get_environ()))

    assert page.status_code == 401
    assert "Enviar um novo link" in page.get_data(as_text=True)
    assert page.headers["Cache-Control"] == "no-store"
