"""The merchant's support API, scoped to the API key's merchant (`_merchant`): its
buyers looked up by e-mail or CPF/CNPJ, a buyer's subscriptions and orders (from
billing), a subscription's
activity log; and what the merchant does for a buyer (cancel now or at the period's
end, undo that; change plan, quote then confirm; the login e-mail sent again),
through the buyer's own operations with the merchant as the actor: the same rules
(but not the self-service settings), events and activity entries.

Lists are pages (`?cursor=<next_cursor of the page before>&limit=…`). subscriptions
checks every argument again, and another merchant's buyer or subscription answers 404
or an empty page, like one that does not exist.
"""
from gateway.merchant_catalog_api import checked_query
from gateway.schemas import (
    CustomersQuery, MerchantCancelRequest, PageQuery, PlanChangeQuoteRequest, PlanChangeRequest,
)
from services.common.validation import load
from services.common.web import http, json_response, read_json

SUBSCRIPTION = "/api/v1/merchant/subscriptions/<subscription_id>"
# What a support answer holds (a buyer's name, document, address) is no page to keep.
NO_STORE = {"Cache-Control": "no-store"}


class MerchantSupportRoutes:
    """Mixin of the gateway service."""

    @http("GET", "/api/v1/merchant/customers")
    def find_merchant_customers(self, request):
        merchant_id = self._merchant(request)
        page = self.subscriptions.find_customers(merchant_id, checked_query(request, CustomersQuery()))
        return json_response(page, headers=NO_STORE)

    @http("GET", "/api/v1/merchant/customers/<email>/subscriptions")
    def list_customer_subscriptions(self, request, email):
        merchant_id = self._merchant(request)
        page = self.subscriptions.customer_subscriptions(merchant_id, email, **checked_query(request, PageQuery()))
        return json_response(page, headers=NO_STORE)

    @http("GET", "/api/v1/merchant/customers/<email>/orders")
    def list_customer_orders(self, request, email):
        merchant_id = self._merchant(request)
        page = self.billing.merchant_customer_orders(merchant_id, email, **checked_query(request, PageQuery()))
        return json_response(page, headers=NO_STORE)

    @http("GET", f"{SUBSCRIPTION}/activity")
    def list_subscription_activity(self, request, subscription_id):
        merchant_id = self._merchant(request)
        page = self.subscriptions.merchant_activity(merchant_id, subscription_id, **checked_query(request, PageQuery()))
        return json_response(page, headers=NO_STORE)

    @http("POST", f"{SUBSCRIPTION}/cancel")
    def merchant_cancel_subscription(self, request, subscription_id):
        merchant_id = self._merchant(request)
        body = load(MerchantCancelRequest(), read_json(request))
        return json_response(self.subscriptions.merchant_cancel(merchant_id, subscription_id, body))

    @http("DELETE", f"{SUBSCRIPTION}/cancel")
    def merchant_undo_cancel_subscription(self, request, subscription_id):
        merchant_id = self._merchant(request)
        return json_response(self.subscriptions.merchant_undo_cancel(merchant_id, subscription_id))

    @http("POST", "/api/v1/merchant/customers/<email>/login-link")
    def resend_customer_login_link(self, request, email):
        """E-mail the buyer a login link as if they had asked (under the same rate limit),
        noted in their subscriptions' activity; 404 if they are none of the merchant's."""
        merchant_id = self._merchant(request)
        self.subscriptions.note_login_link_requested(merchant_id, email)
        return json_response(self.auth.request_login_link(email, merchant_id=merchant_id), status=202)

    @http("POST", f"{SUBSCRIPTION}/plan-change/quote")
    def merchant_quote_plan_change(self, request, subscription_id):
        merchant_id = self._merchant(request)
        body = load(PlanChangeQuoteRequest(), read_json(request))
        quote = self.subscriptions.merchant_quote_plan_change(merchant_id, subscription_id, body["offer_id"])
        return json_response({"quote": quote}, status=201)

    @http("POST", f"{SUBSCRIPTION}/plan-change")
    def merchant_change_plan(self, request, subscription_id):
        """Confirm a quote: charged exactly as quoted, with the buyer's payment method."""
        merchant_id = self._merchant(request)
        body = load(PlanChangeRequest(), read_json(request))
        return json_response(self._subscriptions_calling_billing().merchant_change_plan(
            merchant_id, subscription_id, body["quote_id"], body["installments"]))
