"""`make run`'s merchant on devtools' fake Mercado Pago: Delta Idiomas, one monthly
offer, and a Mercado Pago account (sandbox) whose notifications the fake posts to
billing, signed with the account's secret. Its buyers' cards are saved at the fake,
and their renewals, pix and boleto are charged there. Loading it again changes
nothing (the fake forgets everything when it stops, so it is told the URL each time)."""
import requests

from services.common.errors import NotFound

MERCHANT = {"id": "delta-idiomas", "name": "Delta Idiomas"}
OFFER = {
    "merchant_id": "delta-idiomas", "id": "delta-mensal", "product_name": "Inglês Online",
    "plan_name": "Mensal", "price_cents": 4990, "periodicity_months": 1, "max_installments": 1,
}
# Credentials of the fake only: no real Mercado Pago account has them.
ACCESS_TOKEN = "APP_USR-demo-delta-idiomas-fake-mercadopago"
SECRET = "demo-delta-idiomas-notification-secret"
OWNER = "dona@delta.example.com"
HTTP_TIMEOUT = 10


def load(rpc, fake_url):
    """Delta Idiomas and its account through `rpc` (the operator's), its notifications
    set at the fake at `fake_url`; → the merchant's id."""
    try:
        rpc.subscriptions.get_merchant(MERCHANT["id"])
    except NotFound:
        rpc.subscriptions.upsert_merchant(MERCHANT)
    rpc.subscriptions.upsert_offer(OFFER)
    known = rpc.billing.list_processor_accounts(MERCHANT["id"])
    account = known[0] if known else rpc.billing.set_processor_account({
        "merchant_id": MERCHANT["id"], "processor": "mercadopago", "environment": "sandbox",
        "api_key": ACCESS_TOKEN, "webhook_token": SECRET, "notify": [OWNER],
    })
    answer = requests.post(
        f"{fake_url}/fake/notifications", headers={"Authorization": f"Bearer {ACCESS_TOKEN}"}, timeout=HTTP_TIMEOUT,
        json={"url": account["callback_url"], "secret": SECRET},
    )
    answer.raise_for_status()
    return MERCHANT["id"]
