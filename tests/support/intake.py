"""The checkout's side of a running portal: registers a subscription, and the paid
order of its first cycle, for a new buyer (so tests never change the demo buyers)."""
import uuid
from contextlib import contextmanager
from datetime import timedelta

from nameko.standalone.rpc import ClusterRpcProxy

from services.common import clock
from services.subscriptions.domain import add_months
from support.system import BROKER

CARD = {"method": "credit_card", "card_brand": "visa", "card_last4": "4242", "card_exp": "08/2030"}


@contextmanager
def checkout(system):
    """`register(offer_id, periodicity_months, price_cents, ...)` → (e-mail, subscription id)."""
    with ClusterRpcProxy({"AMQP_URI": f"{BROKER}/{system.vhost}"}, timeout=30) as rpc:

        def register(offer_id, periodicity_months, price_cents, started=timedelta(days=10), email=None,
                     merchant_id="acme-cursos", status="active"):
            """A subscription started `started` ago; past due: its first cycle ended 12 hours ago."""
            email = email or f"e2e-{uuid.uuid4().hex[:10]}@example.com"
            token = f"tok_e2e_{uuid.uuid4().hex[:12]}"
            if status == "past_due":
                end = clock.now() - timedelta(hours=12)
                start = add_months(end, -periodicity_months)
            else:
                start = clock.now() - started
                end = add_months(start, periodicity_months)
            external_id = f"e2e-{uuid.uuid4().hex[:10]}"
            subscription = rpc.subscriptions.create_subscription({
                "merchant_id": merchant_id, "external_id": external_id, "offer_id": offer_id, "email": email,
                "status": status, "cycle_number": 1, "cycle_start": start.isoformat(), "cycle_end": end.isoformat(),
                "payment": {**CARD, "token": token},
            })
            rpc.billing.record_order({
                "merchant_id": merchant_id, "external_id": f"{external_id}-c1",
                "buyer": {"email": email, "name": "Carla Teste"}, "product_name": "Curso Completo",
                "offer_id": offer_id, "subscription_id": subscription["id"], "cycle_number": 1,
                "amount_cents": price_cents, "status": "paid", "payment": {**CARD, "token": token},
                "created_at": start.isoformat(),
            })
            return email, subscription["id"]

        yield register
