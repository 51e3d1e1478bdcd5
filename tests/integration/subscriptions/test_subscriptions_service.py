"""The subscriptions service on a real broker and a real database."""
import uuid
from datetime import datetime, timedelta, timezone
from queue import Empty

import pytest
from services.common.rpc import ClusterRpcProxy
from sqlalchemy import func, select

from services.common.db import make_engine
from services.common.errors import NotFound, ValidationFailed
from services.subscriptions.models import Activity, Contact, Merchant, Subscription
from services.subscriptions.service import SubscriptionsService
from support.subscriptions_testkit import LEDGER, FakeBilling, Ledger

CYCLE_START = datetime(2026, 11, 10, 15, 30, tzinfo=timezone.utc)
CARD = {"method": "credit_card", "card_brand": "visa", "card_last4": "4242", "card_exp": "08/2030", "token": "tok_ana"}


def identity(email, merchant_id=None):
    return {"email": email, "merchant_id": merchant_id, "session_id": "test-session"}


def subscription(external_id, merchant_id="acme-cursos", offer_id="acme-basico", email="ana@example.com", **changes):
    return {
        "merchant_id": merchant_id, "external_id": external_id, "offer_id": offer_id, "email": email,
        "status": "active", "cycle_number": 1, "cycle_start": CYCLE_START.isoformat(),
        "cycle_end": (CYCLE_START + timedelta(days=30)).isoformat(), "payment": card_of(email, merchant_id),
        **changes,
    }


def card_of(email, merchant_id):
    """A card token is issued for one buyer of one merchant (billing refuses it for any other)."""
    if (email, merchant_id) == ("ana@example.com", "acme-cursos"):
        return CARD
    return {**CARD, "token": f"tok_{merchant_id}_{email}"}


@pytest.fixture
def config(service_config):
    return service_config("subscriptions")


@pytest.fixture
def ledger():
    LEDGER["current"] = Ledger()
    return LEDGER["current"]


@pytest.fixture
def rpc(config, container_factory, ledger):
    container_factory(FakeBilling, config).start()
    container_factory(SubscriptionsService, config).start()
    with ClusterRpcProxy(config, timeout=15) as proxy:
        yield proxy.subscriptions


@pytest.fixture
def count_rows(config):
    engine = make_engine(config["SUBSCRIPTIONS_DB_URL"])

    def count(model):
        with engine.connect() as connection:
            return connection.execute(select(func.count()).select_from(model)).scalar_one()

    yield count
    engine.dispose()


@pytest.fixture
def catalog(rpc):
    rpc.upsert_merchant({"id": "acme-cursos", "name": "Acme Cursos", "customer_can_cancel": True,
                         "support_email": "suporte@acme.example.com"})
    rpc.upsert_merchant({"id": "beta-software", "name": "Beta Software"})
    rpc.upsert_offer({"merchant_id": "acme-cursos", "id": "acme-basico", "product_name": "Curso Completo",
                      "plan_name": "Básico mensal", "price_cents": 2990, "periodicity_months": 1})
    rpc.upsert_offer({"merchant_id": "beta-software", "id": "beta-pro", "product_name": "Beta Pro",
                      "plan_name": "Beta Pro mensal", "price_cents": 4990, "periodicity_months": 1})


# Intake's rules are tested by its handler (tests/unit/subscriptions/test_handlers_intake.py);
# here one success and one failure, on the broker and the database.

def test_intake_is_idempotent_and_announced_once(rpc, catalog, event_queue, count_rows, ledger):
    events = event_queue("subscriptions", "subscription_created")

    first = rpc.create_subscription(subscription("checkout-1"))
    repeat = rpc.create_subscription(subscription("checkout-1", status="past_due"))

    assert repeat == first
    assert first["next_charge_at"] == "2026-12-10T15:30:00+00:00"
    assert count_rows(Subscription) == 1
    assert count_rows(Activity) == 1
    assert list(ledger.cards) == ["tok_ana"]
    # Whoever bought a subscription can log in, even if the checkout sent no contact.
    assert count_rows(Contact) == 1 and rpc.customer_exists("ana@example.com") is True
    message = events.get(timeout=10)
    message.ack()
    envelope = message.payload
    assert set(envelope) == {"event_id", "type", "version", "occurred_at", "merchant_id", "data"}
    assert uuid.UUID(envelope["event_id"])
    assert (envelope["type"], envelope["version"], envelope["merchant_id"]) == ("subscription_created", 1, "acme-cursos")
    assert datetime.fromisoformat(envelope["occurred_at"]).tzinfo is not None
    assert envelope["data"] == {
        "subscription_id": first["id"], "external_id": "checkout-1", "offer_id": "acme-basico",
        "email": "ana@example.com", "status": "active", "cycle_end": "2026-12-10T15:30:00+00:00",
    }
    with pytest.raises(Empty):
        events.get(timeout=1)


def test_buyers_see_only_their_own_subscriptions(rpc, catalog):
    ana_acme = rpc.create_subscription(subscription("ana-acme", created_at="2026-11-01T10:00:00+00:00"))
    ana_beta = rpc.create_subscription(subscription(
        "ana-beta", merchant_id="beta-software", offer_id="beta-pro", created_at="2026-11-02T10:00:00+00:00"))
    bruno_beta = rpc.create_subscription(subscription(
        "bruno-beta", merchant_id="beta-software", offer_id="beta-pro", email="bruno@example.com"))

    assert [item["id"] for item in rpc.list_subscriptions(identity("ANA@example.com"))] == [ana_beta["id"], ana_acme["id"]]
    assert [item["id"] for item in rpc.list_subscriptions(identity("bruno@example.com"))] == [bruno_beta["id"]]
    assert rpc.list_subscriptions(identity("nobody@example.com")) == []

    detail = rpc.get_subscription(identity("ana@example.com"), ana_acme["id"])
    assert {key: detail[key] for key in ana_acme} == ana_acme
    assert detail["self_service"] == {
        "change_payment_method": False, "change_plan": False, "cancel": True,
        "cancel_mode": "at_period_end", "payment_methods_allowed": ["credit_card"],
    }
    for someone_else, subscription_id in [
        (identity("bruno@example.com"), ana_acme["id"]),
        (identity("ana@example.com"), bruno_beta["id"]),
        (identity("ana@example.com"), str(uuid.uuid4())),
        (identity("ana@example.com"), "not-an-id"),
    ]:
        with pytest.raises(NotFound):
            rpc.get_subscription(someone_else, subscription_id)


def test_a_merchant_scoped_session_sees_that_merchant_only(rpc, catalog):
    ana_acme = rpc.create_subscription(subscription("ana-acme"))
    ana_beta = rpc.create_subscription(subscription("ana-beta", merchant_id="beta-software", offer_id="beta-pro"))

    scoped = identity("ana@example.com", merchant_id="beta-software")
    assert [item["id"] for item in rpc.list_subscriptions(scoped)] == [ana_beta["id"]]
    assert rpc.get_subscription(scoped, ana_beta["id"])["id"] == ana_beta["id"]
    with pytest.raises(NotFound):
        rpc.get_subscription(scoped, ana_acme["id"])


def test_customer_exists_at_any_merchant(rpc, catalog, count_rows):
    rpc.upsert_contact({"merchant_id": "acme-cursos", "email": "Ana@Example.com", "name": "Ana Souza",
                        "document": "12345678909"})
    again = rpc.upsert_contact({"merchant_id": "acme-cursos", "email": "ana@example.com", "name": "Ana S. Souza",
                                "document": "123.456.789-09"})
    assert (again["name"], again["document"], again["email"]) == ("Ana S. Souza", "123.456.789-09", "ana@example.com")
    assert count_rows(Contact) == 1

    assert rpc.customer_exists("ana@example.com") is True
    assert rpc.customer_exists("  ANA@example.com ") is True
    assert rpc.customer_exists("bruno@example.com") is False
    assert rpc.customer_exists("ana@example") is False


def test_customer_exists_at_one_merchant(rpc, catalog):
    rpc.upsert_contact({"merchant_id": "acme-cursos", "email": "ana@example.com", "name": "Ana Souza"})
    assert rpc.customer_exists("ana@example.com", merchant_id="acme-cursos") is True
    assert rpc.customer_exists("ana@example.com", merchant_id="beta-software") is False


def test_get_merchant_gives_settings_and_refuses_unknown_ids(rpc, catalog):
    merchant = rpc.get_merchant("acme-cursos")
    assert (merchant["name"], merchant["customer_can_cancel"], merchant["support_email"]) == (
        "Acme Cursos", True, "suporte@acme.example.com")
    with pytest.raises(NotFound):
        rpc.get_merchant("nobody")


def test_upserts_are_idempotent_by_their_natural_keys(rpc, count_rows):
    merchant = {"id": "acme-cursos", "name": "Acme Cursos", "customer_can_change_plan": True,
                "allowed_origins": ["https://acme.example.com"]}
    first = rpc.upsert_merchant(merchant)
    assert rpc.upsert_merchant(merchant) == first
    renamed = rpc.upsert_merchant({**merchant, "name": "Acme Cursos Online"})
    assert renamed == {**first, "name": "Acme Cursos Online"}
    assert count_rows(Merchant) == 1

    offer = {"merchant_id": "acme-cursos", "product_name": "Curso Completo", "price_cents": 2990, "periodicity_months": 1}
    rpc.upsert_offer({**offer, "id": "basico", "plan_name": "Básico"})
    rpc.upsert_offer({**offer, "id": "premium", "plan_name": "Premium", "plan_change_options": ["basico"]})
    # Upserting without options keeps the ones the offer has.
    assert rpc.upsert_offer({**offer, "id": "premium", "plan_name": "Premium"})["plan_change_options"] == ["basico"]


def test_bad_input_names_the_fields(rpc, catalog):
    with pytest.raises(ValidationFailed) as failure:
        rpc.upsert_offer({"merchant_id": "acme-cursos", "id": "gratis", "product_name": "Curso",
                          "plan_name": "Grátis", "price_cents": 0, "periodicity_months": 4})
    assert set(failure.value.fields) == {"price_cents", "periodicity_months"}
    assert failure.value.code == "validation_error"

    with pytest.raises(ValidationFailed) as failure:
        rpc.upsert_offer({"merchant_id": "acme-cursos", "id": "premium", "product_name": "Curso",
                          "plan_name": "Premium", "price_cents": 5990, "periodicity_months": 1,
                          "max_installments": 3, "plan_change_options": ["beta-pro"]})
    assert set(failure.value.fields) == {"max_installments", "plan_change_options"}

    with pytest.raises(ValidationFailed) as failure:
        rpc.list_subscriptions({"email": "ana@example.com"})
    assert set(failure.value.fields) == {"merchant_id", "session_id"}


def test_intake_of_a_card_billing_refuses_writes_nothing(rpc, catalog, ledger, count_rows):
    rpc.create_subscription(subscription("ana-1"))
    with pytest.raises(ValidationFailed) as failure:
        rpc.create_subscription(subscription("bruno-1", email="bruno@example.com", payment=CARD))
    assert failure.value.fields == {"payment": {"token": ["Belongs to another buyer."]}}
    assert count_rows(Subscription) == 1
    assert count_rows(Contact) == 1
    assert list(ledger.cards) == ["tok_ana"]
