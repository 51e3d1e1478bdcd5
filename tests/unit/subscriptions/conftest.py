"""The handler tests: each operation against the unit of work in memory
(support/subscriptions_uow.py) and billing in memory (support/subscriptions_testkit.py),
with the network off: a test here that opened a socket would fail."""
import socket
from datetime import timedelta

import eventlet.green.socket
import pytest
import pytest_socket

from services.subscriptions.domain.rules import add_months
from services.subscriptions.models import Merchant, Offer, Subscription
from services.subscriptions.ports import Ports
from support.subscriptions_testkit import ANA, NOW, InMemoryBilling, Ledger, card_for
from support.subscriptions_uow import FakeUnitOfWork

ISSUE_AHEAD = timedelta(days=3)

ACME = Merchant(
    id="acme-cursos", name="Acme Cursos", customer_can_change_payment_method=True, customer_can_change_plan=True,
    customer_can_cancel=True, cancel_mode="at_period_end", payment_methods_allowed=["credit_card", "boleto", "pix"],
)
BETA = Merchant(
    id="beta-software", name="Beta Software", customer_can_change_payment_method=False,
    customer_can_change_plan=False, customer_can_cancel=False, cancel_mode="immediately",
    payment_methods_allowed=[],
)
MERCHANTS = {merchant.id: merchant for merchant in (ACME, BETA)}
# What the database gives a new offer (models.Offer's defaults apply at insert only).
ON_SALE = {"status": "active", "payment_methods_accepted": ["credit_card", "boleto", "pix"]}
OFFERS = [
    Offer(merchant_id="acme-cursos", id=offer_id, product_name="Curso Completo", plan_name=plan, price_cents=price,
          periodicity_months=months, max_installments=installments, plan_change_options=options, **ON_SALE)
    for offer_id, plan, price, months, installments, options in [
        ("acme-basico", "Básico mensal", 2990, 1, 1, ["acme-premium", "acme-anual"]),
        ("acme-premium", "Premium mensal", 5990, 1, 1, ["acme-basico", "acme-anual"]),
        ("acme-anual", "Premium anual", 59900, 12, 12, ["acme-basico", "acme-premium"]),
    ]
] + [
    Offer(merchant_id="beta-software", id="beta-pro", product_name="Beta Pro", plan_name="Pro mensal",
          price_cents=4990, periodicity_months=1, max_installments=1, plan_change_options=["beta-max"], **ON_SALE),
    Offer(merchant_id="beta-software", id="beta-max", product_name="Beta Pro", plan_name="Max mensal",
          price_cents=9990, periodicity_months=1, max_installments=1, plan_change_options=[], **ON_SALE),
]


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Every socket refused (pytest-socket), eventlet's green ones too: tests/conftest.py
    monkey-patches the socket module, whose `create_connection` then makes eventlet's
    own sockets, which pytest-socket alone does not guard. (Its pytest plugin is off,
    `-p no:socket` in pyproject.toml: loaded before that patching, it would put the
    blocking socket back around every test and hang the broker tests. Imported here,
    after it, pytest-socket restores the green one.)"""
    pytest_socket.disable_socket()
    monkeypatch.setattr(eventlet.green.socket, "socket", socket.socket)
    yield
    pytest_socket.enable_socket()


@pytest.fixture
def ledger():
    return Ledger()


@pytest.fixture
def clock():
    """`clock.now`: what the handlers see as now (NOW unless a test moves it)."""

    class Clock:
        now = NOW

        def __call__(self):
            return self.now

    return Clock()


@pytest.fixture
def ports(ledger, clock):
    return Ports(InMemoryBilling(ledger), clock, ISSUE_AHEAD)


@pytest.fixture
def uow():
    return FakeUnitOfWork(OFFERS, MERCHANTS.values())


@pytest.fixture
def subscribe(uow, ledger):
    """`subscribe(offer_id, started=timedelta(days=10), ...)`: a subscription as intake
    registers it (its card on file with billing), whose cycle started that long before NOW."""

    def create(offer_id="acme-basico", started=timedelta(days=10), email=ANA, merchant_id="acme-cursos",
               payment=None, status="active"):
        offer = uow.offers.get(merchant_id, offer_id)
        start = NOW - started
        payment = payment or card_for(email, merchant_id)
        if payment["method"] == "credit_card":
            InMemoryBilling(ledger).register_card({"merchant_id": merchant_id, "email": email, "payment": payment})
        subscription = Subscription.register({
            "merchant_id": merchant_id, "external_id": f"checkout-{len(uow.subscriptions.by_id)}",
            "offer_id": offer_id, "email": email, "status": status, "cancel_reason": None, "cycle_number": 1,
            "cycle_start": start, "cycle_end": add_months(start, offer.periodicity_months), "next_charge_at": None,
            "payment": {"card_brand": None, "card_last4": None, "card_exp": None, "token": None, **payment},
            "installments": 1, "created_at": None,
        }, MERCHANTS[merchant_id], offer, NOW - started, ISSUE_AHEAD)
        subscription.changes.clear()
        uow.subscriptions.by_id[subscription.id] = subscription
        return subscription

    return create


