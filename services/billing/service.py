"""nameko entrypoints of the billing service: load, act, dump."""
from nameko.rpc import rpc

from services.billing import store
from services.billing.models import outbox
from services.billing.schemas import OrderEventSchema, OrderInputSchema, OrderSchema
from services.common.db import Database
from services.common.envelope import EventType, event_catalog
from services.common.errors import EXPECTED_ERRORS, NotFound
from services.common.outbox import Outbox
from services.common.rpc import Pingable
from services.common.schemas import IdentitySchema
from services.common.validation import load

EVENTS = event_catalog(
    EventType("order_created", OrderEventSchema()),
    EventType("order_paid", OrderEventSchema()),
)

IDENTITY = IdentitySchema()
ORDER_INPUT = OrderInputSchema()
ORDER = OrderSchema()


def order_event_data(order):
    return {
        "order_id": order.id,
        "code": order.code,
        "subscription_id": order.subscription_id,
        "amount_cents": order.amount_cents,
        "status": order.status,
        "method": order.payment_method,
    }


class BillingService(Pingable):
    name = "billing"

    db = Database("BILLING_DB_URL")
    events = Outbox("BILLING_DB_URL", outbox, EVENTS)

    @rpc(expected_exceptions=EXPECTED_ERRORS, sensitive_arguments=("order.payment.token",))
    def record_order(self, order):
        """Register a checkout's order; a repeat of its external_id returns the first."""
        data = load(ORDER_INPUT, order)

        def work(session):
            existing = store.find_by_external_id(session, data["merchant_id"], data["external_id"])
            if existing is not None:
                return ORDER.dump(existing)
            created = store.create_order(session, data)
            self.events.record(session, "order_created", created.merchant_id, order_event_data(created))
            if created.status == "paid":
                self.events.record(session, "order_paid", created.merchant_id, order_event_data(created))
            return ORDER.dump(created)

        return self.db.retry_on_conflict(work)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def list_orders(self, identity):
        identity = load(IDENTITY, identity)
        with self.db.transaction() as session:
            return ORDER.dump(store.buyer_orders(session, identity), many=True)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def get_order(self, identity, code):
        identity = load(IDENTITY, identity)
        if not isinstance(code, str):
            raise NotFound("Order not found.")
        with self.db.transaction() as session:
            # Codes are read aloud and typed: accept them in any case.
            return ORDER.dump(store.buyer_order(session, identity, code.strip().upper()))
