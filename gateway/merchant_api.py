"""Merchant routes of the JSON API: a merchant's backend calls them with its API key
(`Authorization: Bearer pk_live_...`); every one is scoped to that key's merchant.

Intake (`POST /merchant/orders`, `POST /merchant/subscriptions`) is what a checkout
calls after a sale: the buyer becomes a contact that the login recognises, and a
repeat of the merchant's own `external_id` answers what the first call created.
Bodies are checked here for their shape; the owning service checks them again, with
its rules, and an object of another merchant answers 404 like one that does not exist.
"""
from gateway import cookies
from gateway.buyer_api import idempotency_key, optional_json
from gateway.schemas import (
    MerchantSettingsRequest, OrderIntakeRequest, PlanChangeOptionsRequest, RefundRequest, SsoTicketRequest,
    SubscriptionIntakeRequest,
)
from services.common.errors import Unauthorized, ValidationFailed
from services.common.validation import load
from services.common.web import http, json_response, read_json

# Who the buyer is, as billing keeps it on an order (the address travels beside it).
ORDER_BUYER_FIELDS = ("email", "name", "document", "phone")


def _sale(body, merchant_id):
    """`body` without its customer, for the merchant's id."""
    return {**{key: value for key, value in body.items() if key != "customer"}, "merchant_id": merchant_id}


class MerchantRoutes:
    """Mixin of the gateway service."""

    def _merchant(self, request):
        """The id of the merchant whose API key authenticates `request`, or 401."""
        key = cookies.bearer_token_from(request)
        if not key:
            raise Unauthorized("Send the API key as `Authorization: Bearer <key>`.", code="api_key_required")
        return self.auth.authenticate_api_key(key)["merchant_id"]

    @http("POST", "/api/v1/merchant/sso-tickets")
    def issue_sso_ticket(self, request):
        """A one-time URL (valid seconds) that logs one of the merchant's buyers in."""
        merchant_id = self._merchant(request)
        body = load(SsoTicketRequest(), read_json(request))
        ticket = self.auth.issue_sso_ticket(merchant_id, body["email"], body["return_url"])
        return json_response(ticket, status=201, headers={"Cache-Control": "no-store"})

    def _contact(self, merchant_id, customer):
        """The buyer as a contact of the merchant: what makes the login recognise them."""
        self.subscriptions.upsert_contact({"merchant_id": merchant_id, **customer})

    @http("POST", "/api/v1/merchant/subscriptions")
    def intake_subscription(self, request):
        merchant_id = self._merchant(request)
        body = read_json(request)
        load(SubscriptionIntakeRequest(), body)
        self._contact(merchant_id, body["customer"])
        subscription = self.subscriptions.create_subscription(
            {**_sale(body, merchant_id), "email": body["customer"]["email"]})
        return json_response({"subscription": subscription}, status=201)

    @http("POST", "/api/v1/merchant/orders")
    def intake_order(self, request):
        merchant_id = self._merchant(request)
        body = read_json(request)
        load(OrderIntakeRequest(), body)
        customer = body["customer"]
        self._contact(merchant_id, customer)
        order = self.billing.record_order({
            **_sale(body, merchant_id),
            "buyer": {key: customer.get(key) for key in ORDER_BUYER_FIELDS},
            "address": customer.get("address"),
        })
        return json_response({"order": order}, status=201)

    @http("POST", "/api/v1/merchant/orders/<code>/refunds")
    def request_refund(self, request, code):
        """Refund the merchant's order; the `Idempotency-Key` makes a repeat refund once."""
        merchant_id = self._merchant(request)
        key = idempotency_key(request)
        if key is None:
            raise ValidationFailed("Send an Idempotency-Key.", fields={"Idempotency-Key": ["Required."]})
        body = load(RefundRequest(), optional_json(request))
        refund = self.billing.request_refund({
            "merchant_id": merchant_id, "code": code.strip().upper(), "request_key": key, "actor": "merchant", **body,
        })
        return json_response({"refund": refund}, status=201)

    @http("POST", "/api/v1/merchant/orders/<code>/refunds/<refund_id>/done")
    def confirm_manual_refund(self, request, code, refund_id):
        """The merchant gave a `pending_manual` refund back itself (a boleto's, its checkout's
        own charge): the refund is done and the order refunded, as a processor's would."""
        merchant_id = self._merchant(request)
        return json_response({"refund": self.billing.confirm_manual_refund(merchant_id, code, refund_id)})

    @http("GET", "/api/v1/merchant/orders/<code>/refunds")
    def list_refunds(self, request, code):
        merchant_id = self._merchant(request)
        return json_response({"refunds": self.billing.list_refunds(merchant_id, code)})

    @http("GET", "/api/v1/merchant/settings")
    def get_merchant_settings(self, request):
        merchant_id = self._merchant(request)
        return json_response({"settings": self.subscriptions.get_merchant(merchant_id)})

    @http("PUT", "/api/v1/merchant/settings")
    def put_merchant_settings(self, request):
        merchant_id = self._merchant(request)
        body = read_json(request)
        load(MerchantSettingsRequest(), body)
        return json_response({"settings": self.subscriptions.put_merchant_settings(merchant_id, body)})

    @http("PUT", "/api/v1/merchant/offers/<offer_id>/plan-change-options")
    def put_plan_change_options(self, request, offer_id):
        merchant_id = self._merchant(request)
        body = read_json(request)
        load(PlanChangeOptionsRequest(), body)
        return json_response({"offer": self.subscriptions.set_plan_change_options(merchant_id, offer_id, body)})
