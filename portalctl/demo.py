"""Demo data: three merchants, their offers, and three buyers with orders and subscriptions.

What each demo buyer can try (Acme lets buyers do everything, Beta nothing):
- ana@example.com: her monthly Básico at Acme upgrades at once (Premium mensal) or to
  a new annual cycle in up to 12 installments; her annual Premium downgrades at the
  end of its cycle (undoable); both change payment method and cancel at period end
  (undoable).
- bruno@example.com: his Acme Premium mensal is past due: changing its payment method
  charges it at once ("update and pay now"); his Beta Pro is past due too, and every
  operation on it is refused (`operation_disabled`).
- carla@example.com: her Gama Academia plan is past due on pix; Gama is charged
  through its own Asaas account (devtools' fake Asaas in `make run`), so paying with
  pix again ("update and pay now") issues a pix charge at Asaas, and paying it there
  (`POST /v3/sandbox/payment/{id}/confirm`) reaches billing as Asaas's webhook.

`load_demo(rpc, portal_url)` does what an operator and each merchant do: the
operator creates the merchants and their offers (RPC) and hands each merchant an API
key; with it the merchant's backend sets its settings and plan-change options and
its checkout feeds the sales in through the merchant API (`/api/v1/merchant/...`),
so the data obeys every rule the portal enforces. The key is revoked when done.
Each record has a stable key (merchant and offer slugs, `demo-...` external ids) and
every call is idempotent by it: a second run changes nothing. Dates are relative to
the shared clock at the first run.
"""
from datetime import timedelta

import requests

from services.billing.processors import brcode
from services.common import clock
from services.common.errors import NotFound
from services.subscriptions.domain import add_months

HTTP_TIMEOUT = 30

ANA = "ana@example.com"
BRUNO = "bruno@example.com"
CARLA = "carla@example.com"

# Gama Academia's account at Asaas's sandbox: a key and webhook token of the demo's own,
# which only devtools' fake Asaas takes (`make run` points ASAAS_SANDBOX_URL at it).
GAMA = "gama-academia"
GAMA_ASAAS_KEY = "$aact_hmlg_000DemoGamaAcademiaFakeAsaasOnlyNotARealKey"
GAMA_WEBHOOK_TOKEN = "DemoGamaAcademiaWebhookTokenForTheFakeAsaasOnly"
GAMA_OWNER = "dona@gama.example.com"

MERCHANTS = [
    {
        "id": "acme-cursos",
        "name": "Acme Cursos",
        "customer_can_change_payment_method": True,
        "customer_can_change_plan": True,
        "customer_can_cancel": True,
        "cancel_mode": "at_period_end",
        "payment_methods_allowed": ["credit_card", "boleto", "pix"],
        "support_email": "suporte@acme.example.com",
        "support_phone": "+55 11 4004-1234",
        "support_url": "https://acme.example.com/ajuda",
        "allowed_origins": ["https://acme.example.com"],
        "brand_name": "Acme Cursos",
        "accent_color": "#E4572E",
    },
    {
        # Every self-service option off: the portal only shows, it changes nothing.
        "id": "beta-software",
        "name": "Beta Software",
        "customer_can_change_payment_method": False,
        "customer_can_change_plan": False,
        "customer_can_cancel": False,
        "cancel_mode": "immediately",
        "payment_methods_allowed": ["credit_card"],
        "support_email": "ajuda@beta.example.com",
        "support_phone": "+55 31 3333-4321",
        "support_url": "https://beta.example.com/suporte",
        "allowed_origins": [],
        "brand_name": "Beta Software",
        "accent_color": "#2E86AB",
    },
    {
        # Charged through its own Asaas account (see GAMA_ASAAS_KEY).
        "id": GAMA,
        "name": "Gama Academia",
        "customer_can_change_payment_method": True,
        "customer_can_change_plan": False,
        "customer_can_cancel": True,
        "cancel_mode": "at_period_end",
        "payment_methods_allowed": ["credit_card", "boleto", "pix"],
        "support_email": "contato@gama.example.com",
        "support_phone": "+55 47 3333-7777",
        "support_url": "https://gama.example.com/atendimento",
        "allowed_origins": [],
        "brand_name": "Gama Academia",
        "accent_color": "#3C896D",
    },
]

OFFERS = [
    {
        "merchant_id": "acme-cursos", "id": "acme-basico-mensal",
        "product_name": "Curso Completo", "plan_name": "Básico mensal",
        "price_cents": 2990, "periodicity_months": 1, "max_installments": 1,
    },
    {
        "merchant_id": "acme-cursos", "id": "acme-premium-mensal",
        "product_name": "Curso Completo", "plan_name": "Premium mensal",
        "price_cents": 5990, "periodicity_months": 1, "max_installments": 1,
    },
    {
        "merchant_id": "acme-cursos", "id": "acme-premium-anual",
        "product_name": "Curso Completo", "plan_name": "Premium anual",
        "price_cents": 59900, "periodicity_months": 12, "max_installments": 12,
    },
    {
        "merchant_id": "beta-software", "id": "beta-pro-mensal",
        "product_name": "Beta Pro", "plan_name": "Beta Pro mensal",
        "price_cents": 4990, "periodicity_months": 1, "max_installments": 1,
    },
    {
        "merchant_id": GAMA, "id": "gama-musculacao-mensal",
        "product_name": "Academia", "plan_name": "Musculação mensal",
        "price_cents": 12990, "periodicity_months": 1, "max_installments": 1,
    },
]

# Set once every offer exists, since options name other offers.
PLAN_CHANGE_OPTIONS = {
    "acme-basico-mensal": ["acme-premium-mensal", "acme-premium-anual"],
    "acme-premium-mensal": ["acme-basico-mensal", "acme-premium-anual"],
    "acme-premium-anual": ["acme-basico-mensal", "acme-premium-mensal"],
}

BUYERS = {
    ANA: {
        "name": "Ana Souza",
        "document": "123.456.789-09",
        "phone": "+55 11 98765-4321",
        "address": {
            "street": "Rua Augusta", "number": "1500", "complement": "Apto 42",
            "district": "Consolação", "city": "São Paulo", "state": "SP",
            "postal_code": "01310-100", "country": "BR",
        },
    },
    CARLA: {
        "name": "Carla Dias",
        # A valid CPF: Asaas refuses customers without one.
        "document": "529.982.247-25",
        "phone": "+55 47 99123-4567",
        "address": {
            "street": "Rua XV de Novembro", "number": "500", "complement": None,
            "district": "Centro", "city": "Joinville", "state": "SC",
            "postal_code": "89201-600", "country": "BR",
        },
    },
    BRUNO: {
        "name": "Bruno Lima",
        "document": "987.654.321-00",
        "phone": "+55 31 99876-5432",
        "address": {
            "street": "Avenida Afonso Pena", "number": "1000", "complement": None,
            "district": "Centro", "city": "Belo Horizonte", "state": "MG",
            "postal_code": "30130-001", "country": "BR",
        },
    },
}

ANA_VISA = {"method": "credit_card", "card_brand": "visa", "card_last4": "4242",
            "card_exp": "08/2030", "token": "tok_demo_ana_visa_4242"}
BRUNO_MASTERCARD = {"method": "credit_card", "card_brand": "mastercard", "card_last4": "5454",
                    "card_exp": "03/2029", "token": "tok_demo_bruno_mastercard_5454"}
# The same card, as Acme's processor account tokenized it (a token belongs to one merchant's buyer).
BRUNO_MASTERCARD_AT_ACME = {**BRUNO_MASTERCARD, "token": "tok_demo_bruno_acme_mastercard_5454"}

# A linha digitável with valid check digits (Bradesco layout), R$ 47,00.
EBOOK_BOLETO_LINE = "23793.38102 90000.001231 45012.345604 1 12340000004700"
# The pix code Carla's checkout showed her (a valid BR Code, for R$ 129,90).
CARLA_PIX = {"method": "pix", "pix_code": brcode.pix_code(
    "contato@gama.example.com", 12990, "GAMA ACADEMIA", "JOINVILLE", "DEMOCARLAGAMA1")}


def subscriptions(now):
    """Ana: a monthly and an annual subscription at Acme; Bruno: one past due at Acme and
    at Beta; Carla: one past due at Gama, on pix."""
    basic_start = now - timedelta(days=10)
    annual_start = now - timedelta(days=40)
    # Bruno's renewals failed 12 hours ago, at the end of his first cycles.
    bruno_end = now - timedelta(hours=12)
    return [
        {
            "merchant_id": "acme-cursos", "external_id": "demo-ana-basic",
            "offer_id": "acme-basico-mensal", "email": ANA, "status": "active",
            "cycle_number": 1, "cycle_start": basic_start, "cycle_end": add_months(basic_start, 1),
            "installments": 1, "payment": ANA_VISA, "created_at": basic_start,
        },
        {
            "merchant_id": "acme-cursos", "external_id": "demo-ana-annual",
            "offer_id": "acme-premium-anual", "email": ANA, "status": "active",
            "cycle_number": 1, "cycle_start": annual_start, "cycle_end": add_months(annual_start, 12),
            "installments": 12, "payment": ANA_VISA, "created_at": annual_start,
        },
        {
            "merchant_id": "beta-software", "external_id": "demo-bruno-pro",
            "offer_id": "beta-pro-mensal", "email": BRUNO, "status": "past_due",
            "cycle_number": 1, "cycle_start": add_months(bruno_end, -1), "cycle_end": bruno_end,
            "installments": 1, "payment": BRUNO_MASTERCARD,
            "created_at": add_months(bruno_end, -1),
        },
        {
            "merchant_id": "acme-cursos", "external_id": "demo-bruno-premium",
            "offer_id": "acme-premium-mensal", "email": BRUNO, "status": "past_due",
            "cycle_number": 1, "cycle_start": add_months(bruno_end, -1), "cycle_end": bruno_end,
            "installments": 1, "payment": BRUNO_MASTERCARD_AT_ACME,
            "created_at": add_months(bruno_end, -1),
        },
        {
            "merchant_id": GAMA, "external_id": "demo-carla-musculacao",
            "offer_id": "gama-musculacao-mensal", "email": CARLA, "status": "past_due",
            "cycle_number": 1, "cycle_start": add_months(bruno_end, -1), "cycle_end": bruno_end,
            "installments": 1, "payment": {"method": "pix"},
            "created_at": add_months(bruno_end, -1),
        },
    ]


def orders(now, subscription_ids):
    """Orders of those subscriptions' cycles, plus Ana's one-off e-book on boleto."""
    ana_basic, ana_annual, bruno_pro, bruno_premium, carla_gama = subscriptions(now)
    return [
        _cycle_order(ana_basic, subscription_ids, 1, "paid", ana_basic["cycle_start"]),
        _cycle_order(ana_annual, subscription_ids, 1, "paid", ana_annual["cycle_start"]),
        _cycle_order(bruno_pro, subscription_ids, 1, "paid", bruno_pro["cycle_start"]),
        # The renewals of Bruno's second cycles, refused by the card's issuer.
        _cycle_order(bruno_pro, subscription_ids, 2, "refused", bruno_pro["cycle_end"]),
        _cycle_order(bruno_premium, subscription_ids, 1, "paid", bruno_premium["cycle_start"]),
        _cycle_order(bruno_premium, subscription_ids, 2, "refused", bruno_premium["cycle_end"]),
        _cycle_order(carla_gama, subscription_ids, 1, "paid", carla_gama["cycle_start"], CARLA_PIX),
        # Her second cycle's pix, never paid.
        _cycle_order(carla_gama, subscription_ids, 2, "expired", carla_gama["cycle_end"], CARLA_PIX),
        {
            "merchant_id": "acme-cursos",
            "external_id": "demo-ana-ebook",
            "customer": _customer(ANA),
            "product_name": "E-book Finanças Pessoais",
            "amount_cents": 4700,
            "installments": 1,
            "status": "pending",
            "payment": {
                "method": "boleto",
                "boleto_line": EBOOK_BOLETO_LINE,
                "boleto_due_date": (now + timedelta(days=3)).date(),
            },
            "created_at": now - timedelta(hours=2),
        },
    ]


def _cycle_order(subscription, subscription_ids, cycle_number, status, at, payment=None):
    offer = next(offer for offer in OFFERS if offer["id"] == subscription["offer_id"])
    email = subscription["email"]
    return {
        "merchant_id": subscription["merchant_id"],
        "external_id": f"{subscription['external_id']}-c{cycle_number}",
        "customer": _customer(email),
        "product_name": offer["product_name"],
        "offer_id": offer["id"],
        "subscription_id": subscription_ids[subscription["external_id"]],
        "cycle_number": cycle_number,
        "amount_cents": offer["price_cents"],
        "installments": subscription["installments"],
        "status": status,
        "payment": payment or subscription["payment"],
        "created_at": at,
        "paid_at": at if status == "paid" else None,
    }


def _customer(email):
    """The buyer as the checkout knows them (what makes them a contact login recognises)."""
    return {"email": email, **BUYERS[email]}


def _wire(value):
    """RPC payloads are JSON: datetimes travel as ISO-8601 with their offset."""
    if isinstance(value, dict):
        return {key: _wire(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_wire(item) for item in value]
    return value.isoformat() if hasattr(value, "isoformat") else value


class MerchantApi:
    """The merchant API as one merchant's backend calls it, with its API key."""

    def __init__(self, portal_url, key):
        self.base = f"{portal_url.rstrip('/')}/api/v1/merchant"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {key}"

    def call(self, method, path, body):
        answer = self.session.request(method, self.base + path, json=_wire(body), timeout=HTTP_TIMEOUT)
        if answer.status_code >= 300:
            raise RuntimeError(f"{method} {path} answered {answer.status_code}: {answer.text}")
        return answer.json()


def _sale(subscription):
    """A subscription as the checkout sends it: the buyer as a customer."""
    sale = {key: value for key, value in subscription.items() if key not in ("merchant_id", "email")}
    return {**sale, "customer": _customer(subscription["email"])}


def _configure_and_sell(api, merchant, now, subscription_ids):
    """One merchant's settings and plan-change options, then its subscriptions' sales."""
    api.call("PUT", "/settings", {key: value for key, value in merchant.items() if key != "id"})
    for offer in OFFERS:
        if offer["merchant_id"] == merchant["id"] and offer["id"] in PLAN_CHANGE_OPTIONS:
            api.call("PUT", f"/offers/{offer['id']}/plan-change-options",
                     {"plan_change_options": PLAN_CHANGE_OPTIONS[offer["id"]]})
    for subscription in subscriptions(now):
        if subscription["merchant_id"] == merchant["id"]:
            created = api.call("POST", "/subscriptions", _sale(subscription))["subscription"]
            subscription_ids[subscription["external_id"]] = created["id"]


def load_demo(rpc, portal_url):
    """Load the demo through `rpc` (an entered ClusterRpcProxy) and the merchant API
    at `portal_url`; return what is there."""
    now = clock.now()
    for merchant in MERCHANTS:
        try:
            rpc.subscriptions.get_merchant(merchant["id"])
        except NotFound:
            rpc.subscriptions.upsert_merchant({"id": merchant["id"], "name": merchant["name"]})
    for offer in OFFERS:
        rpc.subscriptions.upsert_offer(offer)
    if not rpc.billing.list_processor_accounts(GAMA):
        # What an operator does with `portalctl processor-accounts set` (the owner is e-mailed).
        rpc.billing.set_processor_account({
            "merchant_id": GAMA, "processor": "asaas", "environment": "sandbox", "api_key": GAMA_ASAAS_KEY,
            "webhook_token": GAMA_WEBHOOK_TOKEN, "notify": [GAMA_OWNER],
        })

    keys = {merchant["id"]: rpc.auth.create_api_key(merchant["id"]) for merchant in MERCHANTS}
    try:
        apis = {merchant_id: MerchantApi(portal_url, key["key"]) for merchant_id, key in keys.items()}
        subscription_ids = {}
        for merchant in MERCHANTS:
            _configure_and_sell(apis[merchant["id"]], merchant, now, subscription_ids)
        # Orders name their subscription by the portal's id, known now.
        order_codes = [
            apis[order["merchant_id"]].call(
                "POST", "/orders", {key: value for key, value in order.items() if key != "merchant_id"},
            )["order"]["code"]
            for order in orders(now, subscription_ids)
        ]
    finally:
        for key in keys.values():
            rpc.auth.revoke_api_key(key["prefix"])

    return {
        "merchants": len(MERCHANTS),
        "offers": len(OFFERS),
        "contacts": len({(sale["merchant_id"], sale["email"]) for sale in subscriptions(now)}),
        "subscriptions": len(set(subscription_ids.values())),
        "orders": len(set(order_codes)),
        "buyers": sorted(BUYERS),
    }


def register_gama_webhook(rpc, asaas_url):
    """What Gama's owner does in Asaas's web app: register the callback URL billing
    printed for its account, with its webhook token (done against the fake Asaas,
    which forgets it when it stops)."""
    from services.billing.processors.asaas import WEBHOOK_EVENTS

    [account] = rpc.billing.list_processor_accounts(GAMA)
    answer = requests.post(f"{asaas_url.rstrip('/')}/webhooks", timeout=HTTP_TIMEOUT, json={
        "name": "Portal do Cliente", "url": account["callback_url"], "email": GAMA_OWNER, "enabled": True,
        "interrupted": False, "apiVersion": 3, "authToken": GAMA_WEBHOOK_TOKEN, "sendType": "SEQUENTIALLY",
        "events": list(WEBHOOK_EVENTS),
    }, headers={"access_token": GAMA_ASAAS_KEY, "User-Agent": "portal-do-cliente-demo"})
    answer.raise_for_status()
