"""Merchant routes of the JSON API: a merchant's backend calls them with its API key
(`Authorization: Bearer pk_live_...`); every one is scoped to that key's merchant."""
from gateway import cookies
from gateway.schemas import SsoTicketRequest
from services.common.errors import Unauthorized
from services.common.validation import load
from services.common.web import http, json_response, read_json


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
