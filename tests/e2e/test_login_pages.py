"""The same walking skeleton through the HTML pages a browser gets."""
import re

import requests

from support.portal_client import TIMEOUT, inbox_ids, login_email, token_from


def test_a_buyer_logs_in_through_the_pages(system):
    browser = requests.Session()
    home = browser.get(f"{system.gateway_url}/", timeout=TIMEOUT)
    assert home.status_code == 200 and 'name="email"' in home.text
    assert "frame-ancestors 'none'" in home.headers["Content-Security-Policy"]

    before = inbox_ids(system, "ana@example.com")
    sent = browser.post(f"{system.gateway_url}/entrar", data={"email": "ana@example.com"}, timeout=TIMEOUT)
    assert sent.status_code == 200 and "Verifique seu e-mail" in sent.text
    message = login_email(system, "ana@example.com", before)
    assert message["from"] == "Portal do Cliente <portal@localhost>"
    link = next(link for link in message["links"] if link.startswith(system.gateway_url))

    # Opening the link (twice, as a mail scanner might) changes nothing.
    for _ in range(2):
        landing = browser.get(link, timeout=TIMEOUT)
        assert landing.status_code == 200 and "Continuar" in landing.text
        assert landing.headers["Cache-Control"] == "no-store"
        assert landing.headers["Referrer-Policy"] == "no-referrer"
    assert browser.head(link, timeout=TIMEOUT).status_code == 200

    confirmed = browser.post(
        f"{system.gateway_url}/entrar/confirmar", data={"token": token_from(message, system)},
        allow_redirects=False, timeout=TIMEOUT,
    )
    assert confirmed.status_code == 303 and confirmed.headers["Location"].endswith("/pedidos")
    assert "token" not in confirmed.headers["Location"]

    orders = browser.get(f"{system.gateway_url}/pedidos", timeout=TIMEOUT)
    assert orders.status_code == 200
    assert re.search(r"R\$\s29,90", orders.text) and "Visa •••• 4242" in orders.text
    assert "Aguardando pagamento" in orders.text and re.search(r"\d{2}/\d{2}/\d{4}", orders.text)

    subscriptions = browser.get(f"{system.gateway_url}/assinaturas", timeout=TIMEOUT)
    assert "Premium anual" in subscriptions.text and "Básico mensal" in subscriptions.text

    csrf_token = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', orders.text).group(1)
    browser.post(f"{system.gateway_url}/sair", data={"csrf_token": csrf_token}, timeout=TIMEOUT)
    after_logout = browser.get(f"{system.gateway_url}/pedidos", allow_redirects=False, timeout=TIMEOUT)
    assert after_logout.status_code == 303 and after_logout.headers["Location"].endswith("/")


def test_a_used_link_gets_a_friendly_page_with_a_way_forward(system):
    answer = requests.post(f"{system.gateway_url}/entrar/confirmar", data={"token": "y" * 43}, timeout=TIMEOUT)
    assert answer.status_code == 401
    assert "Enviar um novo link" in answer.text and "Traceback" not in answer.text


def test_a_malformed_email_is_explained_next_to_the_field(system):
    answer = requests.post(f"{system.gateway_url}/entrar", data={"email": "ana@"}, timeout=TIMEOUT)
    assert answer.status_code == 400
    assert 'aria-invalid="true"' in answer.text and "e-mail válido" in answer.text
