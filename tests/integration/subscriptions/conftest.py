"""The subscriptions service with a stand-in billing (support/subscriptions_testkit.py)
on the same broker, a catalog, and the shared clock frozen at NOW."""
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from gateway.service import GatewayService
from services.common import clock
from services.common.db import make_engine
from services.common.outbox import event_exchange
from services.common.rpc import ClusterRpcProxy
from services.subscriptions.domain import add_months
from services.subscriptions.models import Activity, inbox, subscriptions
from services.subscriptions.service import SubscriptionsService
from support.publishing import publish_confirmed
from support.ports import free_port
from support.subscriptions_testkit import ANA, LEDGER, NOW, FakeBilling, Ledger, card_for

@pytest.fixture
def ledger():
    LEDGER["current"] = Ledger()
    yield LEDGER["current"]
    hold = LEDGER["current"].hold
    if hold is not None and not hold.ready():
        hold.send()


@pytest.fixture
def set_clock(tmp_path, monkeypatch):
    """`set_clock(moment)`: every process of this test (one, here) sees `moment` as now."""
    path = tmp_path / "clock.json"
    monkeypatch.setenv("CLOCK_FILE", str(path))

    def set_to(moment):
        clock.write_clock_file(str(path), frozen_at=moment)
        return moment

    set_to(NOW)
    return set_to


@pytest.fixture
def config(service_config):
    # The timer stays out of the way; tests run passes with run_renewals().
    return service_config("subscriptions", RENEWAL_INTERVAL=3600, RENEWAL_ISSUE_DAYS_AHEAD=3, RPC_TIMEOUT=10)


@pytest.fixture
def services(config, container_factory, ledger, set_clock):
    container_factory(FakeBilling, config).start()
    container_factory(SubscriptionsService, config).start()


@pytest.fixture
def cluster(config, services):
    with ClusterRpcProxy(config, timeout=30) as proxy:
        yield proxy


@pytest.fixture
def rpc(cluster):
    return cluster.subscriptions


OFFERS = [
    ("acme-basico", "Básico mensal", 2990, 1, 1, ["acme-premium", "acme-anual"]),
    ("acme-premium", "Premium mensal", 5990, 1, 1, ["acme-basico", "acme-anual"]),
    ("acme-anual", "Premium anual", 59900, 12, 12, ["acme-basico", "acme-premium"]),
    ("acme-semestral", "Semestral", 60000, 6, 6, ["acme-semestral-plus"]),
    ("acme-semestral-plus", "Semestral Plus", 120000, 6, 6, []),
]


@pytest.fixture
def catalog(rpc):
    """Acme lets buyers do everything (cancel at period end); Beta nothing."""
    rpc.upsert_merchant({
        "id": "acme-cursos", "name": "Acme Cursos", "customer_can_change_payment_method": True,
        "customer_can_change_plan": True, "customer_can_cancel": True, "cancel_mode": "at_period_end",
        "payment_methods_allowed": ["credit_card", "boleto", "pix"],
    })
    rpc.upsert_merchant({"id": "beta-software", "name": "Beta Software", "cancel_mode": "immediately"})
    for offer_id, plan, price, months, installments, _ in OFFERS:
        rpc.upsert_offer({"merchant_id": "acme-cursos", "id": offer_id, "product_name": "Curso Completo",
                          "plan_name": plan, "price_cents": price, "periodicity_months": months,
                          "max_installments": installments})
    for offer_id, plan, price, months, installments, options in OFFERS:
        rpc.upsert_offer({"merchant_id": "acme-cursos", "id": offer_id, "product_name": "Curso Completo",
                          "plan_name": plan, "price_cents": price, "periodicity_months": months,
                          "max_installments": installments, "plan_change_options": options})
    rpc.upsert_offer({"merchant_id": "beta-software", "id": "beta-pro", "product_name": "Beta Pro",
                      "plan_name": "Pro mensal", "price_cents": 4990, "periodicity_months": 1,
                      "plan_change_options": []})
    rpc.upsert_offer({"merchant_id": "beta-software", "id": "beta-max", "product_name": "Beta Pro",
                      "plan_name": "Max mensal", "price_cents": 9990, "periodicity_months": 1})
    rpc.upsert_offer({"merchant_id": "beta-software", "id": "beta-pro", "product_name": "Beta Pro",
                      "plan_name": "Pro mensal", "price_cents": 4990, "periodicity_months": 1,
                      "plan_change_options": ["beta-max"]})


@pytest.fixture
def subscribe(rpc, catalog):
    """`subscribe(offer_id, started=timedelta(days=10), ...)`: a subscription registered
    by intake whose current cycle started that long before NOW."""
    periodicity = {offer_id: months for offer_id, _, _, months, _, _ in OFFERS}
    periodicity.update({"beta-pro": 1, "beta-max": 1})

    def create(offer_id="acme-basico", started=timedelta(days=10), email=ANA, merchant_id="acme-cursos",
               payment=None, **changes):
        start = NOW - started
        end = add_months(start, periodicity[offer_id])
        return rpc.create_subscription({
            "merchant_id": merchant_id, "external_id": f"checkout-{uuid.uuid4().hex[:8]}", "offer_id": offer_id,
            "email": email, "status": "active", "cycle_number": 1, "cycle_start": start.isoformat(),
            "cycle_end": end.isoformat(), "payment": payment or card_for(email, merchant_id), **changes,
        })

    return create


@pytest.fixture
def billing_event(rabbit_config):
    """Publish an envelope on billing.events as billing's outbox relay would."""

    def publish(event_type, order, event_id=None, settled_at_charge=False):
        envelope = {
            "event_id": event_id or str(uuid.uuid4()), "type": event_type, "version": 1,
            "occurred_at": clock.now().isoformat(), "merchant_id": "acme-cursos",
            "data": {
                "order_id": str(uuid.uuid4()), "code": order["code"], "subscription_id": order["subscription_id"],
                "cycle_number": order["cycle_number"], "kind": order["kind"],
                "idempotency_key": order["idempotency_key"], "amount_cents": order["amount_cents"],
                "status": "paid" if event_type == "order_paid" else "refused",
                "method": order["payment"]["method"], "settled_at_charge": settled_at_charge,
            },
        }
        publish_confirmed(rabbit_config["AMQP_URI"], event_exchange("billing"), envelope)
        return envelope["event_id"]

    return publish


@pytest.fixture
def db_rows(config):
    """Read the subscriptions database directly, as it is committed."""
    engine = make_engine(config["SUBSCRIPTIONS_DB_URL"])

    class Rows:
        def subscription(self, subscription_id):
            with engine.connect() as connection:
                row = connection.execute(select(subscriptions).where(
                    subscriptions.c.id == subscription_id)).mappings().one()
            return {key: value for key, value in row.items() if key != "version"}

        def activity(self, subscription_id):
            with engine.connect() as connection:
                return [
                    (row.actor, row.action) for row in connection.execute(
                        select(Activity.__table__).where(Activity.__table__.c.subscription_id == subscription_id)
                        .order_by(Activity.__table__.c.id))
                ]

        def inbox_size(self):
            with engine.connect() as connection:
                return connection.execute(select(func.count()).select_from(inbox)).scalar_one()

    yield Rows()
    engine.dispose()


@pytest.fixture
def start_gateway(runner_factory):
    """`start_gateway(config)` runs the gateway on a free port (the merchant API that
    the demo loader goes through) and returns its URL."""

    def start(config):
        address = f"127.0.0.1:{free_port()}"
        runner_factory({**config, "WEB_SERVER_ADDRESS": address}, GatewayService).start()
        return f"http://{address}"

    return start
