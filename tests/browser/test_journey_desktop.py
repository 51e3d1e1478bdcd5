"""The buyer's journey on a desktop browser, and what the pages refuse: a merchant's
disabled operations, being framed by another site; a merchant's SSO session with its
branding; the English pages, billing's card form in them too."""
import re
from datetime import timedelta

import pytest
import requests

from services.common.rpc import ClusterRpcProxy

from support.browser import BuyerBrowser, artifacts_folder, blocking_violations, foreign_site
from support.journey import ANA, BRUNO, ana_journey, bruno_journey, carla_journey, new_buyer_page
from support.login_flow import create_api_key
from support.merchant_api import merchant_call, new_buyer, new_merchant
from support.portal_client import TIMEOUT
from support.system import BROKER

DESKTOP = {"width": 1280, "height": 900}


@pytest.fixture(scope="module")
def folder():
    return artifacts_folder("desktop")


@pytest.fixture(scope="module")
def bruno(system, chromium, folder):
    """Bruno, logged in once for the tests of this module that look at his subscriptions."""
    return bruno_journey(new_buyer_page(chromium, system, folder / "bruno", DESKTOP))


def test_ana_does_everything_her_merchant_allows(system, chromium, folder):
    ana_journey(new_buyer_page(chromium, system, folder / "ana", DESKTOP))


def test_carla_pays_her_gama_plan_with_a_card_at_asaas_giving_the_holders_details(system, chromium, folder):
    carla_journey(new_buyer_page(chromium, system, folder / "carla", DESKTOP))


def test_bruno_pays_his_past_due_subscription_now(bruno):
    assert bruno.page.get_by_role("heading", level=1).inner_text() == "Curso Completo — Premium mensal"


def test_a_merchant_with_every_option_off_offers_nothing_and_refuses_the_forms(bruno):
    bruno.open("/assinaturas")
    bruno.follow("Beta Pro — Beta Pro mensal")
    bruno.check("beta-subscription")
    main = bruno.page.inner_text("main")
    assert "Pagamento em atraso" in main and "fale com o atendimento de Beta Software" in main
    for operation in ("Atualizar e pagar agora", "Alterar forma de pagamento", "Alterar assinatura",
                      "Cancelar assinatura"):
        assert bruno.page.get_by_role("link", name=operation).count() == 0, operation
    page_url = bruno.page.url
    path = page_url.split(bruno.system.gateway_url, 1)[1]
    token = bruno.csrf_token()
    forms = {
        f"{path}/forma-de-pagamento": {"method": "boleto"},
        f"{path}/forma-de-pagamento/cartao": {},
        f"{path}/plano/cotacao": {"offer_id": "beta-pro-mensal"},
        f"{path}/cancelar": {"reason": "other"},
        f"{path}/cancelar/desfazer": {},
        f"{path}/plano/desfazer": {},
    }
    for action, fields in forms.items():
        answer = bruno.page.request.post(f"{bruno.system.gateway_url}{action}", form={**fields, "csrf_token": token},
                                         headers={"Origin": bruno.system.gateway_url})
        assert answer.status == 403, (action, answer.status)
        assert "Esta operação não está disponível" in answer.text() and "Voltar à assinatura" in answer.text()
    bruno.open(path)
    assert "Pagamento em atraso" in bruno.page.inner_text("main")


def test_a_friendly_page_for_what_does_not_exist(bruno):
    bruno.open("/assinaturas/00000000-0000-0000-0000-000000000000")
    bruno.check("subscription-not-found")
    assert bruno.page.get_by_role("alert").inner_text() == "Não encontramos o que você procurou entre as suas compras."
    bruno.follow("Voltar ao início")


def test_another_site_cannot_frame_the_portal(system, chromium):
    """Another site frames the portal's login page and, as a control, a page of its own."""
    framing = (f'<!doctype html><title>x</title><iframe name="portal" src="{system.gateway_url}/" title="portal">'
               '</iframe><iframe name="control" src="/control" title="control"></iframe>')
    context = chromium.new_context(locale="pt-BR")
    page = context.new_page()
    refused = []
    page.on("requestfailed", lambda request: refused.append((request.url, request.failure)))
    with foreign_site({"/": framing, "/control": "<p>framed</p>"}) as site:
        with page.expect_response(f"{system.gateway_url}/") as portal_answer:
            page.goto(f"{site}/")
        page.wait_for_load_state("load")
        assert page.frame(name="control").inner_text("body") == "framed"
    # The portal answered, and the browser refused to show its answer in the frame.
    assert portal_answer.value.status == 200
    assert "frame-ancestors 'none'" in portal_answer.value.headers["content-security-policy"]
    assert refused == [(f"{system.gateway_url}/", "net::ERR_BLOCKED_BY_RESPONSE")]
    assert "Portal do Cliente" not in page.frame(name="portal").content()
    context.close()


def test_a_merchant_sso_session_shows_its_name_color_and_way_back(system, chromium, folder):
    key = create_api_key(system, "acme-cursos")
    issued = requests.post(
        f"{system.gateway_url}/api/v1/merchant/sso-tickets", headers={"Authorization": f"Bearer {key}"},
        json={"email": BRUNO, "return_url": "https://acme.example.com/minha-conta"}, timeout=TIMEOUT,
    )
    assert issued.status_code == 201, issued.text
    buyer = new_buyer_page(chromium, system, folder / "sso", DESKTOP)
    buyer.page.goto(issued.json()["url"])
    assert buyer.page.url.endswith("/pedidos")
    buyer.check("sso-orders")
    back = buyer.page.get_by_role("link", name="Voltar para Acme Cursos")
    assert back.get_attribute("href") == "https://acme.example.com/minha-conta"
    band = buyer.page.locator(".merchant")
    assert band.evaluate("element => getComputedStyle(element).backgroundColor") == "rgb(228, 87, 46)"
    assert "Beta" not in buyer.page.inner_text("main")


def test_english_by_accept_language_or_the_switch(system, chromium, folder):
    context = chromium.new_context(locale="en-US")
    page = context.new_page()
    page.goto(f"{system.gateway_url}/")
    assert page.get_by_role("heading", level=1).inner_text() == "Access your purchases"
    assert page.locator("html").get_attribute("lang") == "en"
    page.screenshot(path=str(folder / "login-en.png"), full_page=True)
    assert not blocking_violations(page)
    with page.expect_navigation():
        page.get_by_role("link", name="Ver em português").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Acesse suas compras"
    page.goto(f"{system.gateway_url}/")  # the switch is remembered
    assert page.get_by_role("heading", level=1).inner_text() == "Acesse suas compras"
    with page.expect_navigation():
        page.get_by_role("link", name="View in English").click()
    assert page.get_by_role("button", name="Send access link").count() == 1
    context.close()


def test_billings_card_form_speaks_the_pages_language(system, chromium, folder):
    buyer = new_buyer_page(chromium, system, folder / "english-card-form", DESKTOP)
    buyer.log_in(ANA)
    buyer.open("/assinaturas?lang=en")
    buyer.page.get_by_role("link", name=re.compile("^Curso Completo — ")).first.click()
    buyer.page.wait_for_load_state("load")
    buyer.follow("Change payment method")
    buyer.submit("Enter a new card")
    frame = buyer.page.frame_locator("iframe[title='New credit card form']")
    frame.get_by_role("button", name="Save card").click()
    assert "Card number: Check the card number." in frame.get_by_role("alert").inner_text()
    buyer.check("english-card-form")


def test_the_login_works_from_the_keyboard_and_explains_a_bad_e_mail_next_to_the_field(system, chromium, folder):
    buyer = new_buyer_page(chromium, system, folder / "keyboard", DESKTOP)
    buyer.open("/")
    page = buyer.page
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Pular para o conteúdo"
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "email"
    page.keyboard.type("ana@")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    field = page.get_by_label("E-mail")
    assert field.get_attribute("aria-invalid") == "true"
    error = page.locator(f"#{field.get_attribute('aria-describedby')}")
    assert error.inner_text() == "Informe um e-mail válido, como nome@exemplo.com." and error.get_attribute("role") == "alert"
    buyer.check("login-error")


def test_the_operations_work_without_javascript(system, chromium, folder):
    """The operations' pages have no script of their own: with JavaScript off, a cancellation is scheduled and undone."""
    context = chromium.new_context(viewport=DESKTOP, locale="pt-BR", java_script_enabled=False)
    page = context.new_page()
    buyer = BuyerBrowser(page, system, folder / "no-javascript")
    buyer.check = lambda name: page.screenshot(path=str(buyer.folder / f"{name}.png"), full_page=True)  # axe needs scripts
    buyer.log_in(ANA)
    buyer.follow("Assinaturas")
    buyer.page.get_by_role("link", name=re.compile("^Curso Completo — ")).first.click()
    page.wait_for_load_state("load")
    buyer.follow("Cancelar assinatura")
    buyer.submit("Confirmar cancelamento")
    assert "Cancelamento agendado" in page.inner_text("main")
    buyer.submit("Desfazer cancelamento")
    assert "Cancelamento desfeito" in page.inner_text("main")
    assert page.locator("script").count() == 0
    context.close()


def test_a_refunded_order_in_portuguese_and_english(system, chromium, folder):
    """A renewal charged to the buyer's card, refunded in part through the merchant API
    and confirmed by the processor: the order page and the invoice history say so."""
    _merchant_id, key = new_merchant(system, allowed_origins=["https://loja.example.com"])
    email, subscription, _order = new_buyer(system, key, started=timedelta(days=32))
    with ClusterRpcProxy({"AMQP_URI": f"{BROKER}/{system.vhost}"}, timeout=30) as rpc:
        rpc.subscriptions.run_renewals()
        identity = {"email": email, "merchant_id": None, "session_id": "browser-test"}
        [renewal] = [order for order in rpc.billing.list_orders(identity, subscription["id"])
                     if order["kind"] == "renewal"]
        asked = merchant_call(system, "POST", f"/orders/{renewal['code']}/refunds", key, {"amount_cents": 1000},
                              {"Idempotency-Key": f"browser-{renewal['code']}"})
        assert asked.status_code == 201, asked.text
        rpc.billing.reconcile()
    issued = merchant_call(system, "POST", "/sso-tickets", key, {"email": email, "return_url": "https://loja.example.com/"})
    assert issued.status_code == 201, issued.text
    buyer = new_buyer_page(chromium, system, folder / "refund", DESKTOP)
    buyer.page.goto(issued.json()["url"])

    buyer.open(f"/pedidos/{renewal['code']}")
    buyer.check("refunded-order")
    main = buyer.page.inner_text("main").replace("\xa0", " ")
    assert "Reembolsado em parte" in main and "Reembolsado até agora: R$ 10,00 de R$ 39,90." in main
    assert "Concluído" in main
    buyer.open(f"/pedidos/{renewal['code']}?lang=en")  # what the page's "View in English" opens
    buyer.check("refunded-order-en")
    main = buyer.page.inner_text("main").replace("\xa0", " ")
    assert "Partly refunded" in main and "Refunded so far: R$10.00 of R$39.90." in main and "Done" in main
    buyer.open(f"/assinaturas/{subscription['id']}")
    buyer.check("invoice-history-refunded-en")
    assert "Refunded: R$10.00" in buyer.page.inner_text("main").replace("\xa0", " ")
