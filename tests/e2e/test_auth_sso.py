"""A merchant sends its buyer into the portal: API key from `portalctl`, a one-time
ticket, a session scoped to that merchant with a way back, and every refusal."""
import uuid
from datetime import timedelta

import pytest
import requests
from services.common.rpc import ClusterRpcProxy

from services.common import clock
from services.common.config import load_config
from support.login_flow import create_api_key, portalctl
from support.portal_client import TIMEOUT, assert_json_error, log_in
from support.system import BROKER

CARLA = "carla.mendes@example.com"
DIEGO = "diego.alves@example.com"  # bought from Beta only
RETURN_URL = "https://acme.example.com/minha-conta"


@pytest.fixture(scope="module")
def carla_orders(system):
    """Carla bought from both demo merchants ({merchant: order code}); Diego from Beta."""
    config = {**load_config(), "AMQP_URI": f"{BROKER}/{system.vhost}"}
    buyer = {"email": CARLA, "name": "Carla Mendes", "document": "529.982.247-25", "phone": "+55 21 99999-0000"}
    address = {"street": "Rua do Catete", "number": "100", "complement": None, "district": "Catete",
               "city": "Rio de Janeiro", "state": "RJ", "postal_code": "22220-000", "country": "BR"}
    now = clock.now()
    codes = {}
    with ClusterRpcProxy(config, timeout=10) as rpc:
        rpc.subscriptions.upsert_contact(
            {"merchant_id": "beta-software", **buyer, "email": DIEGO, "name": "Diego Alves", "address": address},
        )
        for merchant in ("acme-cursos", "beta-software"):
            rpc.subscriptions.upsert_contact({"merchant_id": merchant, **buyer, "address": address})
            codes[merchant] = rpc.billing.record_order({
                "merchant_id": merchant, "external_id": f"e2e-carla-{merchant}-{uuid.uuid4().hex[:6]}",
                "buyer": buyer, "address": address, "product_name": f"Compra na {merchant}",
                "amount_cents": 1990, "installments": 1, "status": "paid",
                "payment": {"method": "credit_card", "card_brand": "visa", "card_last4": "1111",
                            "card_exp": "12/2031", "token": f"tok_e2e_carla_{merchant}"},
                "created_at": (now - timedelta(days=1)).isoformat(), "paid_at": (now - timedelta(days=1)).isoformat(),
            })["code"]
    return codes


@pytest.fixture(scope="module")
def acme_key(system):
    return create_api_key(system, "acme-cursos")


def ticket_request(system, key, email=CARLA, return_url=RETURN_URL):
    return requests.post(
        f"{system.gateway_url}/api/v1/merchant/sso-tickets", headers={"Authorization": f"Bearer {key}"},
        json={"email": email, "return_url": return_url}, timeout=TIMEOUT,
    )


def test_a_ticket_opens_a_session_scoped_to_the_merchant_exactly_once(system, acme_key, carla_orders):
    issued = ticket_request(system, acme_key)
    assert issued.status_code == 201, issued.text
    url = issued.json()["url"]
    assert url.startswith(f"{system.gateway_url}/sso/") and set(issued.json()) == {"url", "expires_at"}

    browser = requests.Session()
    entered = browser.get(url, allow_redirects=False, timeout=TIMEOUT)
    assert entered.status_code == 303 and entered.headers["Location"].endswith("/pedidos")
    assert entered.headers["Referrer-Policy"] == "no-referrer"
    assert "portal_session=" in entered.headers["Set-Cookie"]

    orders = browser.get(f"{system.gateway_url}/api/v1/me/orders", timeout=TIMEOUT).json()["orders"]
    assert [order["code"] for order in orders] == [carla_orders["acme-cursos"]]
    assert_json_error(
        browser.get(f"{system.gateway_url}/api/v1/me/orders/{carla_orders['beta-software']}", timeout=TIMEOUT), 404,
    )
    page = browser.get(f"{system.gateway_url}/pedidos", timeout=TIMEOUT)
    assert f'href="{RETURN_URL}"' in page.text and "Voltar para Acme Cursos" in page.text

    replayed = requests.get(url, allow_redirects=False, timeout=TIMEOUT)
    assert replayed.status_code == 401 and "Acesso expirado" in replayed.text
    assert "portal_session=" not in replayed.headers.get("Set-Cookie", "")


def test_the_same_buyer_logged_in_herself_sees_every_merchant(system, carla_orders):
    session, _, _ = log_in(system, CARLA)

    orders = session.get(f"{system.gateway_url}/api/v1/me/orders", timeout=TIMEOUT).json()["orders"]

    assert {order["code"] for order in orders} == set(carla_orders.values())
    assert "Voltar para" not in session.get(f"{system.gateway_url}/pedidos", timeout=TIMEOUT).text


def test_an_app_redeems_a_ticket_through_the_json_api(system, acme_key, carla_orders):
    url = ticket_request(system, acme_key).json()["url"]
    ticket = url.rsplit("/", 1)[1]

    started = requests.get(f"{system.gateway_url}/api/v1/sso/{ticket}", timeout=TIMEOUT)

    assert started.status_code == 200
    assert started.json()["session"]["merchant_id"] == "acme-cursos"
    assert set(started.json()) == {"session", "session_token", "csrf_token"}
    assert_json_error(requests.get(f"{system.gateway_url}/api/v1/sso/{ticket}", timeout=TIMEOUT), 401,
                      "invalid_sso_ticket")


def test_a_wrong_missing_or_revoked_key_gets_401(system, carla_orders):
    key = create_api_key(system, "acme-cursos")
    assert ticket_request(system, key).status_code == 201

    assert_json_error(ticket_request(system, key[:-1] + ("A" if key[-1] != "A" else "B")), 401, "invalid_api_key")
    assert_json_error(ticket_request(system, "pk_live_nothing"), 401, "invalid_api_key")
    no_key = requests.post(f"{system.gateway_url}/api/v1/merchant/sso-tickets",
                           json={"email": CARLA, "return_url": RETURN_URL}, timeout=TIMEOUT)
    assert_json_error(no_key, 401, "api_key_required")

    prefix = key.split("_")[2]
    code, output = portalctl(system, "api-keys", "revoke", prefix)
    assert code == 0 and f"revoked {prefix}" in output
    assert_json_error(ticket_request(system, key), 401, "invalid_api_key")
    code, output = portalctl(system, "api-keys", "list", "--merchant", "acme-cursos")
    assert code == 0 and key not in output and f"{prefix}  acme-cursos" in output


def test_portalctl_refuses_a_key_for_an_unknown_merchant(system):
    code, output = portalctl(system, "api-keys", "create", "--merchant", "no-such-merchant")
    assert code == 1 and "pk_live_" not in output


def test_another_merchants_buyer_gets_no_ticket(system, acme_key, carla_orders):
    error = assert_json_error(ticket_request(system, acme_key, email=DIEGO), 422, "unknown_customer")
    assert "email" in error["fields"]


@pytest.mark.parametrize("return_url", [
    "https://evil.example/", "http://acme.example.com/", "https://acme.example.com.evil.example/",
])
def test_a_return_url_off_the_merchants_origins_is_refused(system, acme_key, return_url):
    assert_json_error(ticket_request(system, acme_key, return_url=return_url), 422, "return_url_not_allowed")


def test_a_forged_ticket_gets_a_friendly_page(system):
    answer = requests.get(f"{system.gateway_url}/sso/{'x' * 43}", timeout=TIMEOUT)
    assert answer.status_code == 401 and "Acesso expirado" in answer.text and "Traceback" not in answer.text
