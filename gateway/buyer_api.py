"""The buyer's routes of the JSON API; the identity always comes from the session.

Bodies are validated here before any RPC; the subscriptions service decides
everything else (the merchant's settings, the rules) and answers refusals that the
one status table turns into 403, 404, 409 or 422. POSTs pass their `Idempotency-Key`
header on, so a repeated request answers what the first one did.
"""
from gateway import views
from gateway.schemas import (
    CancelRequest, IdempotencyKeyHeader, PaymentMethodChangeRequest, PlanChangeQuoteRequest, PlanChangeRequest,
)
from services.common.validation import load
from services.common.web import http, json_response, read_json

SUBSCRIPTION = "/api/v1/me/subscriptions/<subscription_id>"


def idempotency_key(request):
    """The request's `Idempotency-Key` header (400 if malformed), or None."""
    if "Idempotency-Key" not in request.headers:
        return None
    return load(IdempotencyKeyHeader(), {"Idempotency-Key": request.headers["Idempotency-Key"]})["key"]


def optional_json(request):
    """A JSON object body, or {} when the request has none."""
    return read_json(request) if request.get_data() else {}


class BuyerRoutes:
    """Mixin of the gateway service."""

    def _subscriptions_calling_billing(self):
        """subscriptions, waited on long enough for its own call to billing to end first."""
        return self.subscriptions.with_timeout(2 * float(self.config["RPC_TIMEOUT"]))

    @http("GET", "/api/v1/me/orders")
    def list_orders(self, request):
        identity = self._identity(request)
        return json_response(views.orders(self, identity))

    @http("GET", "/api/v1/me/orders/<code>")
    def get_order(self, request, code):
        identity = self._identity(request)
        return json_response(views.order_detail(self, identity, code))

    @http("GET", "/api/v1/me/subscriptions")
    def list_subscriptions(self, request):
        identity = self._identity(request)
        return json_response(views.subscriptions(self, identity))

    @http("GET", SUBSCRIPTION)
    def get_subscription(self, request, subscription_id):
        identity = self._identity(request)
        return json_response(views.subscription_detail(self, identity, subscription_id))

    # -- self-service operations

    @http("GET", f"{SUBSCRIPTION}/plan-options")
    def subscription_plan_options(self, request, subscription_id):
        identity = self._identity(request)
        return json_response(views.plan_options(self, identity, subscription_id))

    @http("POST", f"{SUBSCRIPTION}/plan-change/quote")
    def quote_plan_change(self, request, subscription_id):
        body, key = load(PlanChangeQuoteRequest(), read_json(request)), idempotency_key(request)
        identity = self._identity(request)
        quote = self.subscriptions.quote_plan_change(identity, subscription_id, body["offer_id"], idempotency_key=key)
        return json_response({"quote": quote}, status=201)

    @http("POST", f"{SUBSCRIPTION}/plan-change")
    def change_plan(self, request, subscription_id):
        body, key = load(PlanChangeRequest(), read_json(request)), idempotency_key(request)
        identity = self._identity(request)
        return json_response(self._subscriptions_calling_billing().change_plan(
            identity, subscription_id, body["quote_id"], body["installments"], idempotency_key=key,
        ))

    @http("DELETE", f"{SUBSCRIPTION}/plan-change")
    def undo_plan_change(self, request, subscription_id):
        identity = self._identity(request)
        return json_response(self.subscriptions.undo_plan_change(identity, subscription_id))

    @http("POST", f"{SUBSCRIPTION}/payment-method")
    def change_payment_method(self, request, subscription_id):
        body, key = load(PaymentMethodChangeRequest(), read_json(request)), idempotency_key(request)
        identity = self._identity(request)
        change = {"method": body["method"]}
        if body["card_token"]:
            change["card_token"] = body["card_token"]
        return json_response(self._subscriptions_calling_billing().change_payment_method(
            identity, subscription_id, change, idempotency_key=key,
        ))

    @http("POST", f"{SUBSCRIPTION}/card-entry")
    def begin_card_entry(self, request, subscription_id):
        """Where the page embeds billing's card form for this subscription (one use)."""
        key = idempotency_key(request)
        identity = self._identity(request)
        ticket = self._subscriptions_calling_billing().begin_card_update(identity, subscription_id, idempotency_key=key)
        return json_response(
            {"form_url": ticket["form_url"], "expires_at": ticket["expires_at"]}, status=201,
            headers={"Cache-Control": "no-store"},
        )

    @http("POST", f"{SUBSCRIPTION}/cancel")
    def cancel_subscription(self, request, subscription_id):
        body, key = load(CancelRequest(), optional_json(request)), idempotency_key(request)
        identity = self._identity(request)
        return json_response(self.subscriptions.cancel(identity, subscription_id, body, idempotency_key=key))

    @http("DELETE", f"{SUBSCRIPTION}/cancel")
    def undo_cancel_subscription(self, request, subscription_id):
        identity = self._identity(request)
        return json_response(self.subscriptions.undo_cancel(identity, subscription_id))

    @http("GET", f"{SUBSCRIPTION}/activity")
    def subscription_activity(self, request, subscription_id):
        identity = self._identity(request)
        return json_response(views.activity(self, identity, subscription_id))
