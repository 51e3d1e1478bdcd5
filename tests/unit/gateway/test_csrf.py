"""Forged-request refusal: the rules, and that no state-changing route escapes them."""
from unittest.mock import MagicMock

import pytest
from nameko.dependency_providers import Config
from nameko.rpc import RpcProxy
from nameko.testing.services import worker_factory
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from gateway import csrf
from gateway.service import GatewayService
from services.common.errors import Forbidden
from services.common.web import http

PORTAL = "http://localhost:8000"
SESSION = "session-token-of-the-browser"
TOKEN = csrf.csrf_token(SESSION)


def request_with(method="POST", headers=None, cookie=SESSION, form=None, json=None):
    headers = dict(headers or {})
    if cookie:
        headers["Cookie"] = f"portal_session={cookie}"
    return Request(EnvironBuilder(method=method, headers=headers, data=form, json=json).get_environ())


def refusal_code(request, base_url=PORTAL):
    refusal = csrf.forgery_refusal(request, base_url)
    return refusal.code if refusal else None


def test_the_token_is_an_hmac_of_the_session_token():
    assert TOKEN == csrf.csrf_token(SESSION)
    assert TOKEN != csrf.csrf_token(SESSION + "x")
    assert SESSION not in TOKEN and len(TOKEN) == 64


@pytest.mark.parametrize("headers", [
    {"Sec-Fetch-Site": "cross-site", "X-CSRF-Token": TOKEN},
    {"Origin": "https://evil.example", "X-CSRF-Token": TOKEN},
    {"Origin": "http://localhost:8001", "X-CSRF-Token": TOKEN},
    {"Origin": "https://localhost:8000", "X-CSRF-Token": TOKEN},
    {"Origin": "null", "X-CSRF-Token": TOKEN},
])
def test_a_cross_site_request_is_refused_even_with_a_valid_token(headers):
    assert refusal_code(request_with(headers=headers)) == "cross_site_request"


def test_a_cross_site_request_is_refused_without_a_session_too():
    assert refusal_code(request_with(headers={"Sec-Fetch-Site": "cross-site"}, cookie=None)) == "cross_site_request"
    assert refusal_code(request_with(headers={"Origin": "https://evil.example"}, cookie=None)) == "cross_site_request"


@pytest.mark.parametrize("headers", [
    {}, {"Sec-Fetch-Site": "same-origin"}, {"Sec-Fetch-Site": "none"}, {"Origin": "http://LOCALHOST:8000"},
    # a form of a no-referrer page, as Chromium sends it
    {"Origin": "null", "Sec-Fetch-Site": "same-origin"},
])
def test_a_same_origin_request_with_the_token_passes(headers):
    assert refusal_code(request_with(headers={**headers, "X-CSRF-Token": TOKEN})) is None


def test_the_origin_of_the_portal_is_compared_without_its_default_port():
    request = request_with(headers={"Origin": "https://portal.example.com", "X-CSRF-Token": TOKEN}, cookie=None)
    assert refusal_code(request, "https://portal.example.com:443/") is None


@pytest.mark.parametrize("headers, form", [
    ({}, None),
    ({"X-CSRF-Token": "0" * 64}, None),
    ({"X-CSRF-Token": csrf.csrf_token("another-session")}, None),
    ({}, {"csrf_token": TOKEN[:-1]}),
])
def test_a_request_with_the_session_cookie_needs_its_token(headers, form):
    assert refusal_code(request_with(headers=headers, form=form)) == "csrf_token_invalid"


def test_the_token_may_come_in_the_form_or_the_header():
    assert refusal_code(request_with(form={"csrf_token": TOKEN, "email": "ana@example.com"})) is None
    assert refusal_code(request_with(headers={"X-CSRF-Token": TOKEN}, json={"email": "ana@example.com"})) is None


def test_the_form_check_leaves_a_json_body_readable():
    request = request_with(json={"email": "ana@example.com"})
    csrf.forgery_refusal(request, PORTAL)
    assert request.get_json() == {"email": "ana@example.com"}


def test_no_session_cookie_or_a_bearer_token_needs_no_csrf_token():
    assert refusal_code(request_with(cookie=None)) is None
    assert refusal_code(request_with(headers={"Authorization": "Bearer app-session-token"})) is None


def test_the_https_portal_checks_its_host_prefixed_cookie():
    request = Request(EnvironBuilder(method="POST", headers={"Cookie": f"__Host-portal_session={SESSION}"}).get_environ())
    assert refusal_code(request, "https://portal.example.com") == "csrf_token_invalid"


def test_every_state_changing_route_of_the_gateway_is_guarded():
    routes = {name: route for name, route in vars(GatewayService).items() if getattr(route, "guarded", False)}
    changing = {name for name, route in routes.items() if route.changes_state}

    assert {"request_login_link", "create_session", "end_session", "end_session_by_id", "issue_sso_ticket",
            "ask_for_link", "confirm_login", "log_in_with_code", "sign_out", "end_session_page"} <= changing
    assert {"link_landing", "sso_landing", "redeem_sso_ticket", "orders_page", "healthz"} <= set(routes) - changing
    for name in dir(GatewayService):
        entrypoints = getattr(getattr(GatewayService, name), "nameko_entrypoints", ())
        if any(hasattr(entrypoint, "url") for entrypoint in entrypoints):
            assert name in routes, f"{name} is an HTTP route outside the guard"


@csrf.guard_routes
class ServiceWithOneRoute:
    name = "guarded"
    config = Config()
    things = RpcProxy("things")

    @http("POST", "/things")
    def create_thing(self, request):
        self.things.create()
        return "made"


def test_a_refused_request_never_reaches_its_route():
    service = worker_factory(ServiceWithOneRoute, config={"PORTAL_BASE_URL": PORTAL}, things=MagicMock())

    with pytest.raises(Forbidden) as refused:
        service.create_thing(request_with(headers={"Origin": "https://evil.example"}))
    assert refused.value.code == "cross_site_request"
    with pytest.raises(Forbidden):
        service.create_thing(request_with())
    service.things.create.assert_not_called()

    assert service.create_thing(request_with(headers={"X-CSRF-Token": TOKEN})) == "made"
    service.things.create.assert_called_once_with()
