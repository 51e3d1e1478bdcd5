"""The subscription page offers exactly the operations the subscriptions service
accepts (its answer's `allowed_operations`), in every state under every merchant setting."""
from unittest.mock import MagicMock

from nameko.testing.services import worker_factory
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from gateway.service import GatewayService
from services.subscriptions.schemas import SubscriptionDetailSchema
from support.subscription_states import every_state, merchant, subscription

IDENTITY = {"email": "ana@example.com", "merchant_id": None, "session_id": "s1", "return_url": None}

# How the page offers each operation: a link to its page, or the form that does it.
OFFERED_BY = {
    "change_payment_method": 'href="/assinaturas/{id}/forma-de-pagamento"',
    "change_plan": 'href="/assinaturas/{id}/plano"',
    "cancel": 'href="/assinaturas/{id}/cancelar"',
    "undo_cancel": 'action="/assinaturas/{id}/cancelar/desfazer"',
    "undo_plan_change": 'action="/assinaturas/{id}/plano/desfazer"',
}


def gateway_answering(detail):
    service = worker_factory(
        GatewayService, auth=MagicMock(), subscriptions=MagicMock(), billing=MagicMock(),
        config={"PORTAL_BASE_URL": "http://localhost:8000", "BILLING_PUBLIC_URL": "http://localhost:8001",
                "TRUSTED_PROXIES": "", "SESSION_ABSOLUTE_SECONDS": 43200},
    )
    service.auth.get_session.return_value = IDENTITY
    service.subscriptions.get_subscription.call_async.return_value.result.return_value = detail
    service.billing.list_orders.call_async.return_value.result.return_value = []
    return service


def offered(service, subscription_id):
    request = Request(EnvironBuilder(
        path=f"/assinaturas/{subscription_id}", headers={"Cookie": "portal_session=token"}).get_environ())
    response = service.subscription_page(request, subscription_id=subscription_id)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    return {operation for operation, marker in OFFERED_BY.items() if marker.format(id=subscription_id) in html}


def test_the_page_offers_exactly_the_allowed_operations_in_every_state():
    service = gateway_answering(None)
    mismatches, seen = [], set()
    for label, row, now in every_state():
        detail = SubscriptionDetailSchema(now).dump(row)
        service.subscriptions.get_subscription.call_async.return_value.result.return_value = detail
        allowed = set(detail["allowed_operations"])
        seen |= allowed
        if offered(service, row.id) != allowed:
            mismatches.append(f"{label}: page {sorted(offered(service, row.id))}, service {sorted(allowed)}")
    assert not mismatches, "\n".join(mismatches[:20])
    assert seen == set(OFFERED_BY)  # every operation was on offer somewhere


def test_a_renewal_under_way_gets_no_plan_change_on_the_page():
    row = subscription(merchant(), "active", waiting="boleto")
    detail = SubscriptionDetailSchema(row.cycle_start).dump(row)
    assert "change_plan" not in detail["allowed_operations"]
    assert offered(gateway_answering(detail), row.id) == {"change_payment_method", "cancel"}


def test_the_invoice_history_says_how_much_of_an_order_was_refunded():
    row = subscription(merchant(), "active")
    service = gateway_answering(SubscriptionDetailSchema(row.cycle_start).dump(row))
    service.billing.list_orders.call_async.return_value.result.return_value = [{
        "code": "PED-ABCDEFGH", "amount_cents": 4700, "installments": 1, "status": "refunded",
        "created_at": "2026-11-01T12:00:00+00:00", "payment": {"method": "credit_card"},
        "refunds": [], "refunded_cents": 4700,
    }]
    request = Request(EnvironBuilder(
        path=f"/assinaturas/{row.id}", headers={"Cookie": "portal_session=token"}).get_environ())
    html = service.subscription_page(request, subscription_id=row.id).get_data(as_text=True).replace("\xa0", " ")
    assert "Reembolsado: R$ 47,00" in html and 'status-refunded">Reembolsado<' in html
