"""The pages' own decisions, with the services replaced: sections, language, and the
way back after a login."""
import re
from unittest.mock import MagicMock

import pytest
from markupsafe import escape
from nameko.testing.services import worker_factory
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from gateway.service import GatewayService
from services.billing.processors import brcode
from services.common import payment_codes
from services.common.errors import NotFound

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


# -- paying a pending order: the pix QR, the boleto's line, barcode and PDF

PIX_CODE = brcode.pix_code("00000000-0000-4000-8000-00000000a5b0", 4700, "acme-cursos", "SAO PAULO", "SBXPIXCODE")
BOLETO_LINE = "23793381029000000123145012345604112340000004700"
BOLETO_BARCODE = "23791123400000047003381090000001234501234560"


def order(method, status="pending", **payment):
    return {
        "code": "PED-ABCDEFGH", "merchant": {"id": "acme"}, "product_name": "E-book", "amount_cents": 4700,
        "installments": 1, "status": status, "created_at": "2026-11-01T12:00:00+00:00", "paid_at": None,
        "payment": {"method": method, "card_brand": None, "card_last4": None, "boleto_line": None,
                    "boleto_due_date": None, "boleto_barcode": None, "boleto_pdf_url": None, "pix_code": None,
                    **payment},
        "buyer": {"name": "Ana Souza", "email": "ana@example.com", "document": None}, "address": None,
        "subscription_id": None, "cycle_number": None, "idempotency_key": None, "kind": None, "decline_reason": None,
    }


def boleto_order(**payment):
    return order("boleto", boleto_line=BOLETO_LINE, boleto_due_date="2026-12-04", boleto_barcode=BOLETO_BARCODE,
                 **payment)


def shown(gateway, route, answer, path="/pedidos/PED-ABCDEFGH"):
    gateway.billing.get_order.return_value = answer
    gateway.subscriptions.get_merchant.return_value = {"id": "acme", "name": "Acme Cursos"}
    response = route(get(path), code="PED-ABCDEFGH")
    # Always the session's buyer's order: billing answers "not found" for anyone else's.
    gateway.billing.get_order.assert_called_once_with(IDENTITY, "PED-ABCDEFGH")
    return response


def script_nonce_is_the_policy_s(response):
    html = response.get_data(as_text=True)
    [nonce] = re.findall(r'<script src="/static/payment.js" nonce="([^"]+)" defer></script>', html)
    assert f"'nonce-{nonce}'" in response.headers["Content-Security-Policy"]
    return True


def test_a_pending_pix_order_shows_its_qr_and_its_code_to_copy(gateway):
    response = shown(gateway, gateway.order_page, order("pix", pix_code=PIX_CODE))
    html = response.get_data(as_text=True)

    qr = f'<img class="qr" src="{escape(payment_codes.pix_qr_svg_data_uri(PIX_CODE))}" alt="QR Code do pix de R$ 47,00">'
    assert qr in html.replace("\xa0", " ")
    # An image of the page's own: data: images are what the policy allows besides 'self'.
    assert "img-src 'self' data:" in response.headers["Content-Security-Policy"]
    assert '<label for="pix-code">Pix copia e cola</label>' in html
    assert re.search(rf'<textarea id="pix-code" class="code-field" readonly[^>]*>{re.escape(str(escape(PIX_CODE)))}</textarea>', html)
    # The copy button waits for the script; without it the field is there to select.
    assert re.search(r'<button type="button" class="secondary" data-copy="pix-code"[^>]* hidden>Copiar código pix</button>', html)
    assert script_nonce_is_the_policy_s(response)


def test_a_pending_boleto_shows_its_line_its_barcode_and_the_processor_s_pdf(gateway):
    pdf = "https://pay.example/boletos/1.pdf"
    html = shown(gateway, gateway.order_page, boleto_order(boleto_pdf_url=pdf)).get_data(as_text=True)

    assert '<label for="boleto-line">Linha digitável do boleto</label>' in html
    assert ('<textarea id="boleto-line" class="code-field" readonly rows="2" spellcheck="false" '
            f'data-copy-value="{BOLETO_LINE}">23793.38102 90000.001231 45012.345604 1 12340000004700</textarea>') in html
    assert f'<img class="barcode" src="{payment_codes.boleto_barcode_svg_data_uri(BOLETO_BARCODE)}" alt="Código de barras' in html
    assert f'href="{pdf}"' in html and "Baixar boleto (PDF)" in html
    assert "/pedidos/PED-ABCDEFGH/boleto" not in html


@pytest.mark.parametrize("pdf", [None, "javascript:alert(1)"])
def test_without_a_processor_s_pdf_the_boleto_links_to_the_portal_s_printable_page(gateway, pdf):
    html = shown(gateway, gateway.order_page, boleto_order(boleto_pdf_url=pdf)).get_data(as_text=True)
    assert '<a class="button secondary" href="/pedidos/PED-ABCDEFGH/boleto">Imprimir boleto</a>' in html
    assert "javascript:" not in html


def test_a_paid_order_asks_for_nothing_and_runs_no_script(gateway):
    html = shown(gateway, gateway.order_page, order("pix", status="paid", pix_code=PIX_CODE)).get_data(as_text=True)
    assert 'class="qr"' not in html and "<script" not in html


def test_the_printable_boleto_page(gateway):
    response = shown(gateway, gateway.boleto_page, boleto_order(), path="/pedidos/PED-ABCDEFGH/boleto")
    html = response.get_data(as_text=True)

    assert response.status_code == 200
    assert '<p class="boleto-line">23793.38102 90000.001231 45012.345604 1 12340000004700</p>' in html
    assert "<dt>Beneficiário</dt><dd>Acme Cursos</dd>" in html and "Ana Souza" in html
    assert f'src="{payment_codes.boleto_barcode_svg_data_uri(BOLETO_BARCODE)}"' in html
    assert re.search(r"<button type=\"button\" data-print hidden>Imprimir</button>", html)
    assert script_nonce_is_the_policy_s(response)


def test_there_is_no_printable_boleto_of_another_buyer_s_order_nor_of_a_pix(gateway):
    gateway.billing.get_order.side_effect = NotFound("Order not found.")
    response = gateway.boleto_page(get("/pedidos/PED-OTHERBUY/boleto"), code="PED-OTHERBUY")
    assert response.status_code == 404
    assert "Não encontramos o que você procurou" in response.get_data(as_text=True)
    gateway.billing.get_order.side_effect = None

    gateway.billing.get_order.return_value = order("pix", pix_code=PIX_CODE)
    assert gateway.boleto_page(get("/pedidos/PED-ABCDEFGH/boleto"), code="PED-ABCDEFGH").status_code == 404


def test_the_printable_boleto_asks_for_a_login_first(gateway):
    response = gateway.boleto_page(get("/pedidos/PED-ABCDEFGH/boleto", signed_in=False), code="PED-ABCDEFGH")
    assert response.status_code == 303 and response.headers["Location"] == "/"
    gateway.billing.get_order.assert_not_called()


@pytest.mark.parametrize("language, texts", [
    ("pt-BR", ("Reembolsado em parte", "Reembolsos", "Reembolsado até agora: R$ 20,00 de R$ 47,00.", "Concluído",
               "Em andamento", "R$ 7,00", "03/11/2026")),
    ("en", ("Partly refunded", "Refunds", "Refunded so far: R$20.00 of R$47.00.", "Done", "In progress", "R$7.00")),
])
def test_a_refunded_order_shows_its_refunds_in_the_buyer_s_language(gateway, language, texts):
    refunds = [
        {"amount_cents": 2000, "status": "done", "created_at": "2026-11-02T12:00:00+00:00",
         "settled_at": "2026-11-03T12:00:00+00:00"},
        {"amount_cents": 700, "status": "pending", "created_at": "2026-11-04T12:00:00+00:00", "settled_at": None},
    ]
    gateway.billing.get_order.return_value = {
        **order("credit_card", status="partially_refunded", card_brand="visa", card_last4="4242"),
        "refunds": refunds, "refunded_cents": 2000}
    gateway.subscriptions.get_merchant.return_value = {"id": "acme", "name": "Acme Cursos"}
    html = gateway.order_page(get("/pedidos/PED-ABCDEFGH", {"Accept-Language": language}), code="PED-ABCDEFGH")
    html = html.get_data(as_text=True).replace("\xa0", " ")
    assert [text for text in texts if text not in html] == []

