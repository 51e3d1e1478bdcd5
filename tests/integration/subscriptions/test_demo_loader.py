"""portalctl's demo loader against the services it goes through, started as nameko
runs them: subscriptions and billing, auth (the API keys) and the gateway (the
merchant API the merchants' part goes through)."""
import json
from datetime import date, datetime

import pytest
from services.common.rpc import ClusterRpcProxy
from sqlalchemy import func, select, text

from portalctl.demo import ANA, BRUNO, CARLA, GAMA_ASAAS_KEY, load_demo
from services.auth.service import AuthService
from services.billing.service import BillingService
from services.common import clock
from services.common.db import make_engine
from services.common.errors import NotFound
from services.subscriptions.service import SubscriptionsService
from support.ports import free_port


def identity(email, merchant_id=None):
    return {"email": email, "merchant_id": merchant_id, "session_id": "test-session"}


def row_counts(url, tables):
    engine = make_engine(url)
    with engine.connect() as connection:
        counts = {
            table: connection.execute(select(func.count()).select_from(text(table))).scalar_one()
            for table in tables
        }
    engine.dispose()
    return counts


def all_rows(config):
    return {
        **row_counts(config["SUBSCRIPTIONS_DB_URL"], [
            "merchants", "offers", "contacts", "subscriptions", "subscription_activity", "outbox"]),
        **{f"billing.{table}": count for table, count in row_counts(
            config["BILLING_DB_URL"], ["orders", "payment_methods", "processor_accounts", "outbox"]).items()},
    }


@pytest.fixture
def config(service_config):
    return service_config("subscriptions", "billing", "auth")


@pytest.fixture
def portal_url(config, runner_factory, start_gateway):
    """The gateway's URL; billing's own HTTP listens on another port."""
    runner_factory({**config, "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}"}, BillingService).start()
    runner_factory(config, SubscriptionsService, AuthService).start()
    return start_gateway(config)


@pytest.fixture
def rpc(config, portal_url):
    with ClusterRpcProxy(config, timeout=30) as proxy:
        yield proxy


def everything_buyers_see(rpc):
    return {
        email: (rpc.subscriptions.list_subscriptions(identity(email)), rpc.billing.list_orders(identity(email)))
        for email in (ANA, BRUNO)
    }


def test_a_second_run_changes_nothing(rpc, config, portal_url):
    first = load_demo(rpc, portal_url)
    rows_after_first = all_rows(config)
    seen_after_first = everything_buyers_see(rpc)
    second = load_demo(rpc, portal_url)

    assert second == first == {
        "merchants": 3, "offers": 5, "contacts": 4, "subscriptions": 5, "orders": 9,
        "buyers": ["ana@example.com", "bruno@example.com", "carla@example.com"],
    }
    assert everything_buyers_see(rpc) == seen_after_first
    assert all_rows(config) == rows_after_first == {
        "merchants": 3, "offers": 5, "contacts": 4, "subscriptions": 5, "subscription_activity": 5,
        # subscription_created for each subscription; offer_changed for each offer
        # created and for Acme's three given their plan-change options (a repeat: none).
        "outbox": 13, "billing.orders": 9, "billing.payment_methods": 3, "billing.processor_accounts": 1,
        # order_created for each order, order_paid for the five paid ones, Gama's account set once.
        "billing.outbox": 15,
    }
    engine = make_engine(config["SUBSCRIPTIONS_DB_URL"])
    with engine.connect() as connection:
        options = dict(connection.execute(text("SELECT id, plan_change_options FROM offers")).all())
    engine.dispose()
    assert {offer_id: sorted(json.loads(value) if isinstance(value, str) else value)
            for offer_id, value in options.items()} == {
        "acme-basico-mensal": ["acme-premium-anual", "acme-premium-mensal"],
        "acme-premium-mensal": ["acme-basico-mensal", "acme-premium-anual"],
        "acme-premium-anual": ["acme-basico-mensal", "acme-premium-mensal"],
        "beta-pro-mensal": [],
        "gama-musculacao-mensal": [],
    }


def test_ana_has_two_subscriptions_at_acme_and_three_orders(rpc, portal_url):
    load_demo(rpc, portal_url)
    ana = identity(ANA)

    subscriptions = {item["plan_name"]: item for item in rpc.subscriptions.list_subscriptions(ana)}
    assert set(subscriptions) == {"Básico mensal", "Premium anual"}
    basic, annual = subscriptions["Básico mensal"], subscriptions["Premium anual"]
    assert (basic["product_name"], basic["price_cents"], basic["periodicity_months"], basic["installments"]) == (
        "Curso Completo", 2990, 1, 1)
    assert (annual["price_cents"], annual["periodicity_months"], annual["installments"]) == (59900, 12, 12)
    for subscription in (basic, annual):
        assert subscription["status"] == "active"
        assert subscription["merchant"] == {"id": "acme-cursos", "name": "Acme Cursos", "brand_name": "Acme Cursos", "support": {
            "email": "suporte@acme.example.com", "phone": "+55 11 4004-1234", "url": "https://acme.example.com/ajuda"}}
        assert (subscription["payment_method"]["card_brand"], subscription["payment_method"]["card_last4"]) == ("visa", "4242")
        start, end = (datetime.fromisoformat(subscription["cycle"][key]) for key in ("start", "end"))
        assert start < clock.now() < end
    assert rpc.subscriptions.get_subscription(ana, basic["id"])["self_service"] == {
        "change_payment_method": True, "change_plan": True, "cancel": True, "cancel_mode": "at_period_end",
        "payment_methods_allowed": ["credit_card", "boleto", "pix"],
    }

    orders = rpc.billing.list_orders(ana)
    by_subscription = {order["subscription_id"]: order for order in orders}
    assert set(by_subscription) == {basic["id"], annual["id"], None}
    basic_order, annual_order, ebook = by_subscription[basic["id"]], by_subscription[annual["id"]], by_subscription[None]
    assert (basic_order["status"], basic_order["amount_cents"], basic_order["cycle_number"]) == ("paid", 2990, 1)
    assert basic_order["payment"]["method"] == "credit_card"
    assert (basic_order["payment"]["card_brand"], basic_order["payment"]["card_last4"]) == ("visa", "4242")
    assert (annual_order["status"], annual_order["amount_cents"], annual_order["installments"]) == ("paid", 59900, 12)
    assert (ebook["product_name"], ebook["status"], ebook["amount_cents"]) == ("E-book Finanças Pessoais", "pending", 4700)
    assert ebook["payment"]["method"] == "boleto"
    assert len(ebook["payment"]["boleto_line"]) == 47 and ebook["payment"]["boleto_line"].isdigit()
    assert date.fromisoformat(ebook["payment"]["boleto_due_date"]) > clock.now().date()
    assert ebook["buyer"] == {"name": "Ana Souza", "email": ANA, "document": "123.456.789-09"}
    assert ebook["address"]["city"] == "São Paulo"
    assert orders[0]["code"] == ebook["code"]  # newest first


def test_carla_is_past_due_on_pix_at_gama_which_has_an_asaas_account(rpc, portal_url):
    load_demo(rpc, portal_url)
    carla = identity(CARLA)

    [subscription] = rpc.subscriptions.list_subscriptions(carla)
    assert (subscription["merchant"]["id"], subscription["status"]) == ("gama-academia", "past_due")
    assert subscription["payment_method"]["method"] == "pix"
    assert sorted((order["cycle_number"], order["status"]) for order in rpc.billing.list_orders(carla)) == [
        (1, "paid"), (2, "expired")]
    [account] = rpc.billing.list_processor_accounts("gama-academia")
    assert (account["processor"], account["environment"], account["api_key_hint"]) == (
        "asaas", "sandbox", GAMA_ASAAS_KEY[-4:])


def test_bruno_is_past_due_at_both_merchants_and_sees_nothing_of_anas(rpc, portal_url):
    load_demo(rpc, portal_url)
    bruno = identity(BRUNO)

    subscriptions = {item["merchant"]["id"]: item for item in rpc.subscriptions.list_subscriptions(bruno)}
    beta, acme = subscriptions["beta-software"], subscriptions["acme-cursos"]
    assert (beta["plan_name"], beta["status"]) == ("Beta Pro mensal", "past_due")
    assert (acme["plan_name"], acme["status"]) == ("Premium mensal", "past_due")
    for subscription in (beta, acme):
        assert datetime.fromisoformat(subscription["next_charge_at"]) > clock.now()
    assert rpc.subscriptions.get_subscription(bruno, beta["id"])["self_service"] == {
        "change_payment_method": False, "change_plan": False, "cancel": False, "cancel_mode": "immediately",
        "payment_methods_allowed": ["credit_card"],
    }
    # Acme lets him pay the past-due renewal by changing the payment method.
    assert rpc.subscriptions.get_subscription(bruno, acme["id"])["self_service"]["change_payment_method"] is True
    orders = rpc.billing.list_orders(bruno)
    for subscription in (beta, acme):
        assert sorted(
            (order["cycle_number"], order["status"]) for order in orders if order["subscription_id"] == subscription["id"]
        ) == [(1, "paid"), (2, "refused")]
    assert len(orders) == 4

    assert rpc.subscriptions.customer_exists(ANA) and rpc.subscriptions.customer_exists(BRUNO)
    ana = identity(ANA)
    for code in [order["code"] for order in rpc.billing.list_orders(ana)]:
        with pytest.raises(NotFound):
            rpc.billing.get_order(bruno, code)
    for subscription_id in [item["id"] for item in rpc.subscriptions.list_subscriptions(ana)]:
        with pytest.raises(NotFound):
            rpc.subscriptions.get_subscription(bruno, subscription_id)
