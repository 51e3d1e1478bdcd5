"""Billing under test: the service on a real broker and database, its HTTP on a free
port, and a stand-in subscriptions service on the same vhost that records the cards
it is asked to apply and knows the subscriptions a test gave a buyer."""
import uuid
from types import SimpleNamespace

import pytest
import requests
from services.common.rpc import ClusterRpcProxy
from nameko.testing.utils import get_container
from sqlalchemy import func, select

from services.billing.service import BillingService
from services.common.db import make_engine
from services.common.errors import EXPECTED_ERRORS, NotFound
from services.common.rpc import rpc
from support.card_entry import card_form, sandbox_charges

ANA = {"email": "ana@example.com", "merchant_id": "acme-cursos"}


class FakeSubscriptions:
    """Answers `change_payment_method` as the contract says, recording each call;
    `refusal` (an exception) makes it refuse instead. `get_subscription` answers for
    the subscriptions in `owners` (id → buyer e-mail and merchant), to their buyer only."""

    name = "subscriptions"
    calls = []
    refusal = None
    owners = {}

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def get_subscription(self, identity, subscription_id):
        owner = FakeSubscriptions.owners.get(subscription_id)
        if owner != {"email": identity["email"], "merchant_id": identity["merchant_id"]}:
            raise NotFound("Subscription not found.")
        return {"id": subscription_id, "email": owner["email"], "merchant": {"id": owner["merchant_id"]}}

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def change_payment_method(self, identity, subscription_id, payment, actor="buyer", idempotency_key=None):
        FakeSubscriptions.calls.append(
            {"identity": identity, "subscription_id": subscription_id, "payment": payment, "actor": actor}
        )
        if FakeSubscriptions.refusal is not None:
            raise FakeSubscriptions.refusal
        return {"id": subscription_id, "payment_method": {"method": "credit_card", "card_token": payment["card_token"]}}


@pytest.fixture
def billing_overrides():
    """Config keys a test module changes for billing (override this fixture)."""
    return {}


@pytest.fixture
def billing_config(service_config, web_config, billing_overrides):
    # The reconciler's timer stays out of the way unless a test asks for it.
    return service_config("billing", **{**web_config, "RECONCILE_INTERVAL": 3600, **billing_overrides})


@pytest.fixture
def count_rows(billing_config):
    """`count_rows(model or table, **filters)`: how many of its rows match."""
    engine = make_engine(billing_config["BILLING_DB_URL"])

    def count(model, **filters):
        columns = getattr(model, "c", model)
        with engine.connect() as connection:
            query = select(func.count()).select_from(model)
            for name, value in filters.items():
                query = query.where(getattr(columns, name) == value)
            return connection.execute(query).scalar_one()

    yield count
    engine.dispose()


@pytest.fixture
def billing(billing_config, runner_factory):
    """The running billing service and what tests do with it: `.rpc`, `.url(path)`,
    `.subscription_calls`, `.add_card(number)` → token, `.sandbox_charges(key)`,
    `.processor` (the adapter the service uses), `.card_form(...)`, `.received(...)`,
    `.make_subscriptions_refuse(error)`, `.subscription_of(buyer)` → a new subscription's id,
    `.container` (billing's service container)."""
    FakeSubscriptions.calls = []
    FakeSubscriptions.refusal = None
    FakeSubscriptions.owners = {}
    runner = runner_factory(billing_config, BillingService, FakeSubscriptions)
    runner.start()
    container = get_container(runner, BillingService)
    base_url = f"http://{billing_config['WEB_SERVER_ADDRESS']}"

    def url(path):
        return base_url + path

    def add_card(number, buyer=ANA, subscription_id=None):
        ticket = proxy.billing.issue_card_entry_ticket(
            {**buyer, "subscription_id": subscription_id or str(uuid.uuid4())}
        )
        answer = requests.post(url("/card"), data=card_form(ticket["ticket"], number), timeout=10)
        assert answer.status_code == 200, answer.text
        return FakeSubscriptions.calls[-1]["payment"]["card_token"]

    def subscription_of(buyer):
        subscription_id = str(uuid.uuid4())
        FakeSubscriptions.owners[subscription_id] = {"email": buyer["email"], "merchant_id": buyer["merchant_id"]}
        return subscription_id

    def charges(key):
        return sandbox_charges(billing_config["BILLING_DB_URL"], key)

    with ClusterRpcProxy(billing_config, timeout=20) as proxy:
        yield SimpleNamespace(
            rpc=proxy.billing, url=url, subscription_calls=FakeSubscriptions.calls, add_card=add_card,
            sandbox_charges=charges, config=billing_config, card_form=card_form, received=received,
            processor=_processor(container), container=container,
            make_subscriptions_refuse=lambda error: setattr(FakeSubscriptions, "refusal", error),
            subscription_of=subscription_of,
        )


def _processor(container):
    provider = next(dep for dep in container.dependencies if dep.attr_name == "processors")
    return provider.processors.default


def received(queue, count, timeout=10):
    """The next `count` envelopes on `queue`, acknowledged."""
    envelopes = []
    for _ in range(count):
        message = queue.get(timeout=timeout)
        message.ack()
        envelopes.append(message.payload)
    return envelopes
