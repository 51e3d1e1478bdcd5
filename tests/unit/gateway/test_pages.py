"""The pages' own decisions, with the services replaced: sections, language, and the
way back after a login."""
from unittest.mock import MagicMock

import pytest
from nameko.testing.services import worker_factory
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from gateway.service import GatewayService

PORTAL = "http://localhost:8000"
IDENTITY = {"email": "ana@example.com", "merchant_id": None, "session_id": "s1", "return_url": None}


def subscription(status, **more):
    return {
        "id": f"sub-{status}", "merchant": {"id": "acme", "name": "Acme Cursos", "support": {}},
        "product_name": "Curso", "plan_name": f"Plano {status}", "price_cents": 2990, "periodicity_months": 1,
        "status": status, "cancel_at_period_end": False, "canceled_at": None,
        "cycle": {"number": 1, "start": "2026-11-01T12:00:00+00:00", "end": "2026-12-01T12:00:00+00:00"},
        **more,
    }


@pytest.fixture
def gateway():
    config = {"PORTAL_BASE_URL": PORTAL, "BILLING_PUBLIC_URL": "http://localhost:8001", "TRUSTED_PROXIES": "",
              "SESSION_ABSOLUTE_SECONDS": 43200}
    service = worker_factory(GatewayService, config=config, auth=MagicMock(), subscriptions=MagicMock(),
                             billing=MagicMock())
    service.auth.get_session.return_value = IDENTITY
    return service


def get(path, headers=None, signed_in=True):
    headers = {**(headers or {}), **({"Cookie": "portal_session=token"} if signed_in else {})}
    return Request(EnvironBuilder(path=path, headers=headers).get_environ())


def test_active_and_inactive_subscriptions_are_listed_apart(gateway):
    gateway.subscriptions.list_subscriptions.return_value = [
        subscription("active"), subscription("canceled", canceled_at="2026-11-20T12:00:00+00:00"),
    ]
    html = gateway.subscriptions_page(get("/assinaturas")).get_data(as_text=True)
    active, inactive = html.split('id="current-title">Ativas</h2>')[1].split('id="ended-title">Inativas</h2>')
    assert "Plano active" in active and "Plano canceled" not in active
    assert "Plano canceled" in inactive and "Cancelada em 20/11/2026" in inactive


def test_the_page_speaks_the_browser_s_language(gateway):
    gateway.subscriptions.list_subscriptions.return_value = [subscription("active")]
    response = gateway.subscriptions_page(get("/assinaturas", {"Accept-Language": "en-US,en;q=0.8"}))
    html = response.get_data(as_text=True)
    assert '<html lang="en">' in html and "<h1>Subscriptions</h1>" in html
    assert "R$29.90</strong> per month" in html and "Nov 1, 2026" in html
    assert response.headers["Content-Language"] == "en"
    assert {"Accept-Language", "Cookie"} <= set(response.vary)


def test_the_switch_sets_the_language_and_remembers_it(gateway):
    gateway.subscriptions.list_subscriptions.return_value = []
    response = gateway.subscriptions_page(get("/assinaturas?lang=en", {"Accept-Language": "pt-BR"}))
    assert "<h1>Subscriptions</h1>" in response.get_data(as_text=True)
    assert any(cookie.startswith("portal_lang=en;") for cookie in response.headers.getlist("Set-Cookie"))


def test_a_page_that_needs_a_login_sends_the_buyer_there_and_then_back(gateway):
    response = gateway.subscription_page(get("/assinaturas/sub-1?aviso=x", signed_in=False), subscription_id="sub-1")
    assert response.status_code == 303 and response.headers["Location"] == "/"
    [remembered] = [cookie for cookie in response.headers.getlist("Set-Cookie") if cookie.startswith("return_to=")]
    assert "HttpOnly" in remembered and "SameSite=Lax" in remembered
    gateway.auth.get_session.assert_not_called()

    gateway.auth.redeem_login.return_value = {"session_token": "new", "session": {}}
    login = Request(EnvironBuilder(
        path="/entrar/confirmar", method="POST", data={"token": "t" * 43},
        headers={"Cookie": "login_nonce=n; return_to=/assinaturas/sub-1?aviso=x"},
    ).get_environ())
    answer = gateway.confirm_login(login)
    assert answer.status_code == 303 and answer.headers["Location"] == "/assinaturas/sub-1?aviso=x"
    assert any(cookie.startswith("return_to=;") for cookie in answer.headers.getlist("Set-Cookie"))


def test_an_address_that_is_no_page_gets_a_friendly_page_and_the_api_its_json(gateway):
    page = gateway.unknown_page(get("/assinatura", signed_in=False), unknown="assinatura")
    assert page.status_code == 404 and page.mimetype == "text/html"
    assert "Página não encontrada" in page.get_data(as_text=True) and 'href="/"' in page.get_data(as_text=True)
    api = gateway.unknown_page(get("/api/v1/nada", signed_in=False), unknown="api/v1/nada")
    assert api.status_code == 404 and api.json["error"]["code"] == "not_found"
