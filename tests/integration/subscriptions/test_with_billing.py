"""The self-service operations and renewals with the real billing and its sandbox
processor, on the demo data: the demo buyers can do every operation their merchant
allows, a declined card changes nothing, and a card whose answer is lost ends paid,
charged once."""
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from services.common.rpc import ClusterRpcProxy
from sqlalchemy import select

from portalctl.demo import ANA, BRUNO, CARLA, GAMA_ASAAS_KEY, load_demo
from services.auth.service import AuthService
from services.billing.service import BillingService
from services.common.db import make_engine
from services.billing.processors import Card, CardHolder, make_processor
from services.common.errors import Forbidden, RuleRefused, ValidationFailed
from services.subscriptions.models import BuyerRequest
from services.subscriptions.service import SubscriptionsService
from support import secret_scan
from support.card_entry import card_form, sandbox_charges
from support.subscriptions_testkit import identity
from support.waiting import wait_until

ANA_ID, BRUNO_ID = identity(ANA), identity(BRUNO)
APPROVE, DECLINE, NETWORK_ERROR = "5555555555554444", "4000000000000002", "4000000000000119"
APPROVE_VISA = "4242424242424242"


@pytest.fixture
def config(service_config, web_config, fake_asaas):
    # Timers out of the way: tests run the reconciler themselves. The demo's Gama
    # Academia is charged at Asaas: the fake Asaas, as in `make run`.
    return service_config(
        "subscriptions", "billing", "auth", **web_config, BILLING_PUBLIC_URL=f"http://{web_config['WEB_SERVER_ADDRESS']}",
        RECONCILE_INTERVAL=3600, RENEWAL_INTERVAL=3600, RPC_TIMEOUT=10, ASAAS_SANDBOX_URL=fake_asaas.url,
    )


@pytest.fixture
def rpc(config, runner_factory, start_gateway):
    runner_factory(config, SubscriptionsService, BillingService, AuthService).start()
    portal_url = start_gateway(config)
    with ClusterRpcProxy(config, timeout=30) as proxy:
        load_demo(proxy, portal_url)
        yield proxy


def demo_subscription(rpc, buyer, plan_name, merchant_id="acme-cursos"):
    [found] = [item for item in rpc.subscriptions.list_subscriptions(buyer)
               if item["plan_name"] == plan_name and item["merchant"]["id"] == merchant_id]
    return found


def enter_card(rpc, buyer, subscription_id, number):
    """What the buyer does on billing's card form, opened from the subscription's page."""
    type_card(rpc.subscriptions.begin_card_update(buyer, subscription_id)["form_url"], number)
    return rpc.subscriptions.get_subscription(buyer, subscription_id)["payment_method"]


def type_card(form_url, number):
    """Open billing's card form at `form_url` and save the card `number` in it."""
    opened = requests.get(form_url, timeout=10)
    assert opened.status_code == 200, opened.text
    [ticket] = parse_qs(urlsplit(form_url).query)["ticket"]
    answer = requests.post(form_url.split("?")[0], data=card_form(ticket, number), timeout=10)
    assert answer.status_code == 200, answer.text


def orders_of(rpc, buyer, subscription_id):
    return [order for order in rpc.billing.list_orders(buyer) if order["subscription_id"] == subscription_id]


def test_ana_does_every_operation_acme_allows(rpc, config):
    subscriptions = rpc.subscriptions
    basic = demo_subscription(rpc, ANA_ID, "Básico mensal")
    annual = demo_subscription(rpc, ANA_ID, "Premium anual")

    options = subscriptions.plan_options(ANA_ID, basic["id"])
    assert {option["id"]: option["kind"] for option in options["options"]} == {
        "acme-premium-mensal": "upgrade", "acme-premium-anual": "new_cycle"}
    quote = subscriptions.quote_plan_change(ANA_ID, basic["id"], "acme-premium-mensal")
    upgraded = subscriptions.change_plan(ANA_ID, basic["id"], quote["quote_id"], 1)
    assert (upgraded["order"]["status"], upgraded["order"]["amount_cents"]) == ("paid", quote["charge_cents"])
    assert upgraded["subscription"]["offer_id"] == "acme-premium-mensal"
    assert sandbox_charges(config["BILLING_DB_URL"], f"plan_change:{quote['quote_id']}") == 1

    yearly = subscriptions.quote_plan_change(ANA_ID, basic["id"], "acme-premium-anual")
    assert (yearly["kind"], yearly["max_installments"]) == ("new_cycle", 12)
    renewed = subscriptions.change_plan(ANA_ID, basic["id"], yearly["quote_id"], 12)["subscription"]
    assert (renewed["offer_id"], renewed["cycle"]["number"], renewed["installments"]) == ("acme-premium-anual", 2, 12)
    assert sorted((order["kind"], order["status"], order["amount_cents"]) for order in orders_of(rpc, ANA_ID, basic["id"])
                  if order["kind"] == "plan_change") == sorted([
        ("plan_change", "paid", quote["charge_cents"]), ("plan_change", "paid", yearly["charge_cents"])])

    downgrade = subscriptions.quote_plan_change(ANA_ID, annual["id"], "acme-basico-mensal")
    scheduled = subscriptions.change_plan(ANA_ID, annual["id"], downgrade["quote_id"], 1)["subscription"]
    assert scheduled["pending_plan_change"]["status"] == "scheduled"
    assert subscriptions.undo_plan_change(ANA_ID, annual["id"])["subscription"]["pending_plan_change"] is None

    to_pix = subscriptions.change_payment_method(ANA_ID, annual["id"], {"method": "pix"})["subscription"]
    assert to_pix["payment_method"]["method"] == "pix"
    card = enter_card(rpc, ANA_ID, annual["id"], APPROVE)
    assert (card["method"], card["card_brand"], card["card_last4"]) == ("credit_card", "mastercard", "4444")

    canceled = subscriptions.cancel(ANA_ID, annual["id"], {"reason": "too_expensive"})["subscription"]
    assert (canceled["status"], canceled["cancel_at_period_end"]) == ("active", True)
    assert subscriptions.undo_cancel(ANA_ID, annual["id"])["subscription"]["cancel_at_period_end"] is False

    actions = [item["action"] for item in subscriptions.activity(ANA_ID, annual["id"])]
    assert {"plan_change_scheduled", "plan_change_dropped", "payment_method_changed", "cancellation_scheduled",
            "cancellation_undone"} <= set(actions)


def test_bruno_pays_his_past_due_acme_renewal_with_a_new_card_and_beta_refuses_everything(rpc):
    acme = demo_subscription(rpc, BRUNO_ID, "Premium mensal")
    assert acme["status"] == "past_due"

    card = enter_card(rpc, BRUNO_ID, acme["id"], APPROVE)

    assert card["card_last4"] == "4444"
    paid = rpc.subscriptions.get_subscription(BRUNO_ID, acme["id"])
    assert (paid["status"], paid["cycle"]["number"]) == ("active", 2)
    assert sorted((order["cycle_number"], order["status"]) for order in orders_of(rpc, BRUNO_ID, acme["id"])) == [
        (1, "paid"), (2, "paid"), (2, "refused")]

    beta = demo_subscription(rpc, BRUNO_ID, "Beta Pro mensal", merchant_id="beta-software")
    subscriptions = rpc.subscriptions
    for call, args in [
        (subscriptions.plan_options, ()), (subscriptions.quote_plan_change, ("beta-pro-mensal",)),
        (subscriptions.change_payment_method, ({"method": "credit_card", "card_token": "tok_x"},)),
        (subscriptions.begin_card_update, ()), (subscriptions.cancel, ({"reason": "other"},)),
        (subscriptions.undo_cancel, ()), (subscriptions.undo_plan_change, ()),
    ]:
        with pytest.raises(Forbidden) as refused:
            call(BRUNO_ID, beta["id"], *args)
        assert refused.value.code == "operation_disabled"
    assert rpc.subscriptions.get_subscription(BRUNO_ID, beta["id"])["status"] == "past_due"


def test_a_repeated_card_entry_request_gets_a_fresh_link_and_none_is_kept(rpc, config):
    """A link works once: Ana used the first one, and her repeat of the request (same
    Idempotency-Key) gets a link that takes a card again. subscriptions keeps neither."""
    annual = demo_subscription(rpc, ANA_ID, "Premium anual")
    first = rpc.subscriptions.begin_card_update(ANA_ID, annual["id"], idempotency_key="card-entry-1")
    type_card(first["form_url"], APPROVE)
    repeat = rpc.subscriptions.begin_card_update(ANA_ID, annual["id"], idempotency_key="card-entry-1")
    type_card(repeat["form_url"], APPROVE_VISA)

    card = rpc.subscriptions.get_subscription(ANA_ID, annual["id"])["payment_method"]
    assert (card["card_brand"], card["card_last4"]) == ("visa", "4242")
    engine = make_engine(config["SUBSCRIPTIONS_DB_URL"])
    try:
        with engine.connect() as connection:
            [stored] = connection.execute(select(BuyerRequest.__table__).where(
                BuyerRequest.idempotency_key == "card-entry-1")).mappings().all()
    finally:
        engine.dispose()
    assert (stored["operation"], stored["status"], stored["response"]) == ("begin_card_update", "done", None)
    assert secret_scan.scan_database(config["SUBSCRIPTIONS_DB_URL"]) == []


def test_a_declined_card_leaves_the_subscription_as_it_was(rpc, config):
    basic = demo_subscription(rpc, ANA_ID, "Básico mensal")
    enter_card(rpc, ANA_ID, basic["id"], DECLINE)
    before = rpc.subscriptions.get_subscription(ANA_ID, basic["id"])
    activity_before = rpc.subscriptions.activity(ANA_ID, basic["id"])
    quote = rpc.subscriptions.quote_plan_change(ANA_ID, basic["id"], "acme-premium-mensal")

    with pytest.raises(RuleRefused) as refused:
        rpc.subscriptions.change_plan(ANA_ID, basic["id"], quote["quote_id"], 1)

    assert refused.value.code == "charge_declined"
    assert refused.value.fields == {"decline_reason": ["card_declined"]}
    assert rpc.subscriptions.get_subscription(ANA_ID, basic["id"]) == before
    assert rpc.subscriptions.activity(ANA_ID, basic["id"]) == activity_before
    [order] = [order for order in orders_of(rpc, ANA_ID, basic["id"]) if order["kind"] == "plan_change"]
    assert (order["status"], order["decline_reason"]) == ("refused", "card_declined")
    assert sandbox_charges(config["BILLING_DB_URL"], f"plan_change:{quote['quote_id']}") == 1


def test_a_lost_card_answer_ends_paid_after_reconciliation_and_is_charged_once(rpc, config):
    basic = demo_subscription(rpc, ANA_ID, "Básico mensal")
    enter_card(rpc, ANA_ID, basic["id"], NETWORK_ERROR)
    quote = rpc.subscriptions.quote_plan_change(ANA_ID, basic["id"], "acme-premium-mensal")

    result = rpc.subscriptions.change_plan(ANA_ID, basic["id"], quote["quote_id"], 1)

    assert result["order"]["status"] == "pending_confirmation"
    assert result["subscription"]["offer_id"] == "acme-basico-mensal"
    assert result["subscription"]["pending_plan_change"]["status"] == "awaiting_payment"

    assert rpc.billing.reconcile() == {"checked": 1, "settled": 1}

    wait_until(lambda: rpc.subscriptions.get_subscription(ANA_ID, basic["id"])["offer_id"] == "acme-premium-mensal")
    changed = rpc.subscriptions.get_subscription(ANA_ID, basic["id"])
    assert changed["pending_plan_change"] is None
    [order] = [order for order in orders_of(rpc, ANA_ID, basic["id"]) if order["kind"] == "plan_change"]
    assert (order["code"], order["status"], order["amount_cents"]) == (
        result["order"]["code"], "paid", quote["charge_cents"])
    assert sandbox_charges(config["BILLING_DB_URL"], f"plan_change:{quote['quote_id']}") == 1
    assert rpc.billing.reconcile() == {"checked": 0, "settled": 0}


def test_a_declined_renewal_goes_past_due_and_a_new_card_pays_it(set_clock, rpc, config):
    basic = demo_subscription(rpc, ANA_ID, "Básico mensal")
    enter_card(rpc, ANA_ID, basic["id"], DECLINE)

    set_clock(datetime.fromisoformat(basic["cycle"]["end"]))
    # The other demo subscriptions fall due too (Bruno's retries): look at Ana's alone.
    rpc.subscriptions.run_renewals()

    past_due = rpc.subscriptions.get_subscription(ANA_ID, basic["id"])
    assert (past_due["status"], past_due["cycle"]["number"]) == ("past_due", 1)
    assert sandbox_charges(config["BILLING_DB_URL"], f"renewal:{basic['id']}:2") == 1
    enter_card(rpc, ANA_ID, basic["id"], APPROVE)  # "update and pay now"
    renewed = rpc.subscriptions.get_subscription(ANA_ID, basic["id"])
    assert (renewed["status"], renewed["cycle"]["number"], renewed["cycle"]["start"]) == (
        "active", 2, basic["cycle"]["end"])
    assert sorted((order["kind"], order["status"]) for order in orders_of(rpc, ANA_ID, basic["id"])
                  if order["cycle_number"] == 2) == [("renewal", "refused"), ("retry", "paid")]


def test_a_renewal_whose_card_answer_is_lost_renews_once_reconciled(set_clock, rpc, config):
    annual = demo_subscription(rpc, ANA_ID, "Premium anual")
    enter_card(rpc, ANA_ID, annual["id"], NETWORK_ERROR)
    due = datetime.fromisoformat(annual["cycle"]["end"])
    key = f"renewal:{annual['id']}:2"

    set_clock(due)
    rpc.subscriptions.run_renewals()
    assert rpc.subscriptions.get_subscription(ANA_ID, annual["id"])["cycle"]["number"] == 1
    [order] = [order for order in orders_of(rpc, ANA_ID, annual["id"]) if order["cycle_number"] == 2]
    assert (order["kind"], order["status"]) == ("renewal", "pending_confirmation")
    assert rpc.billing.reconcile() == {"checked": 1, "settled": 1}
    set_clock(due + timedelta(hours=1))
    rpc.subscriptions.run_renewals()

    wait_until(lambda: rpc.subscriptions.get_subscription(ANA_ID, annual["id"])["cycle"]["number"] == 2)
    renewed = rpc.subscriptions.get_subscription(ANA_ID, annual["id"])
    assert (renewed["status"], renewed["cycle"]["start"]) == ("active", annual["cycle"]["end"])
    [paid] = [order for order in orders_of(rpc, ANA_ID, annual["id"]) if order["cycle_number"] == 2]
    assert (paid["code"], paid["status"], paid["amount_cents"], paid["installments"]) == (
        order["code"], "paid", 59900, 12)
    assert sandbox_charges(config["BILLING_DB_URL"], key) == 1


def test_a_subscriptions_card_at_gamas_asaas_goes_on_file_with_its_customer(rpc, fake_asaas):
    """A checkout on Asaas hands the card over as `payment.card`; subscriptions passes its
    customer on to billing, which refuses the card without one."""
    asaas = make_processor({"processor": "asaas", "ASAAS_SANDBOX_URL": fake_asaas.url},
                           credentials={"api_key": GAMA_ASAAS_KEY}, environment="sandbox")
    holder = CardHolder(name="Carla Dias", email=CARLA, document="529.982.247-25", postal_code="89201-600",
                        address_number="500", phone="47991234567")
    token = asaas.tokenize(Card(APPROVE_VISA, 5, 2035, "123", "CARLA DIAS"), holder, "203.0.113.7")
    asaas.close()
    start = datetime.now(timezone.utc)
    card = {"customer_ref": token.customer_ref, "card_ref": token.token, "brand": "visa", "last4": "4242",
            "exp": "05/2035"}

    def sold(external_id, card):
        return {"merchant_id": "gama-academia", "external_id": external_id, "offer_id": "gama-musculacao-mensal",
                "email": CARLA, "status": "active", "cycle_number": 1, "cycle_start": start.isoformat(),
                "cycle_end": (start + timedelta(days=30)).isoformat(), "installments": 1,
                "payment": {"method": "credit_card", "card": card}}

    with pytest.raises(ValidationFailed) as refused:
        rpc.subscriptions.create_subscription(sold("gama-no-customer", {**card, "customer_ref": None}))
    # Named as the checkout sent it, as an order's intake names it.
    assert refused.value.fields == {"payment": {"card": {"customer_ref": [
        "Required: the processor's customer the card belongs to."]}}}

    created = rpc.subscriptions.create_subscription(sold("gama-card", card))

    assert created["payment_method"] == {"method": "credit_card", "card_brand": "visa", "card_last4": "4242",
                                         "card_exp": "05/2035"}
    carla = {"email": CARLA, "merchant_id": "gama-academia", "session_id": "test"}
    assert rpc.billing.get_payment_method(carla, token.token)["last4"] == "4242"
