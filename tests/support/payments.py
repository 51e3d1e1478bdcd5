"""A buyer with a pix and a boleto to pay, charged by billing through the sandbox as a
renewal's retry would be: the tests of what a buyer sees to pay them."""
import uuid
from datetime import timedelta

from services.common import clock
from services.subscriptions.domain import add_months

MERCHANT_ID = "acme-cursos"


def buyer_with_pending_payments(rpc, prefix):
    """A new buyer of Acme's monthly plan (so the demo buyers stay as other tests expect)
    and their pending pix and boleto orders: `{"email", "pix", "boleto"}`."""
    email = f"{prefix}-{uuid.uuid4().hex[:8]}@example.com"
    start = clock.now() - timedelta(days=3)
    rpc.subscriptions.upsert_contact({"merchant_id": MERCHANT_ID, "email": email, "name": "Paula Teste"})
    subscription = rpc.subscriptions.create_subscription({
        "merchant_id": MERCHANT_ID, "external_id": f"{prefix}-{uuid.uuid4().hex[:10]}",
        "offer_id": "acme-basico-mensal", "email": email, "status": "active", "cycle_number": 1,
        "cycle_start": start.isoformat(), "cycle_end": add_months(start, 1).isoformat(), "payment": {"method": "pix"},
    })

    def charge(method, **more):
        return rpc.billing.charge({
            "idempotency_key": f"retry:{subscription['id']}:1:{method}", "merchant_id": MERCHANT_ID, "email": email,
            "subscription_id": subscription["id"], "cycle_number": 1, "kind": "retry",
            "product_name": "Curso Completo", "amount_cents": 2990, "method": method, **more,
        })

    orders = {"pix": charge("pix"), "boleto": charge("boleto", due_at=(clock.now() + timedelta(days=3)).isoformat())}
    assert {order["status"] for order in orders.values()} == {"pending"}
    return {"email": email, **orders}
