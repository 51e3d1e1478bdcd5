"""What billing's integration tests send it: a charge request, and a processor's
signed callback posted to billing's HTTP."""
import json
import uuid

import requests

from services.billing import domain


def charge_request(token=None, **changes):
    subscription_id = changes.pop("subscription_id", str(uuid.uuid4()))
    return {
        "idempotency_key": f"plan_change:{uuid.uuid4()}", "merchant_id": "acme-cursos", "email": "ana@example.com",
        "subscription_id": subscription_id, "cycle_number": 1, "kind": "plan_change", "product_name": "Curso Premium",
        "amount_cents": 4990, "installments": 1, "method": "credit_card", "payment_token": token, **changes,
    }


def signed(secret, payload):
    body = json.dumps(payload).encode("utf-8")
    return body, {"Content-Type": "application/json", "X-Signature": domain.callback_signature(secret, body)}


def post_callback(billing, body, headers):
    return requests.post(billing.url("/callbacks/sandbox"), data=body, headers=headers, timeout=10)
