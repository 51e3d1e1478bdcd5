"""Merchant webhook settings in the JSON API: where the merchant's systems hear of its
buyers' subscriptions and orders, and the secret that signs every POST."""
from gateway.schemas import WebhookSettingsRequest
from services.common.validation import load
from services.common.web import http, json_response, read_json


class MerchantWebhookRoutes:
    """Mixin of the gateway service; the merchant comes from its API key (`_merchant`)."""

    @http("GET", "/api/v1/merchant/webhooks")
    def get_merchant_webhooks(self, request):
        """Endpoints, the event types they may take, and the signing secret (shown to
        this merchant only; none before the first PUT)."""
        merchant_id = self._merchant(request)
        settings = self.notifications.get_webhook_settings(merchant_id)
        return json_response(settings, headers={"Cache-Control": "no-store"})

    @http("PUT", "/api/v1/merchant/webhooks")
    def put_merchant_webhooks(self, request):
        """`{"endpoints": [{"url", "event_types": [...]}], "rotate_secret": false}`
        replaces the merchant's endpoints; an endpoint without event types takes all."""
        merchant_id = self._merchant(request)
        body = read_json(request)
        load(WebhookSettingsRequest(), body)
        settings = self.notifications.put_webhook_settings(merchant_id, body)
        return json_response(settings, headers={"Cache-Control": "no-store"})
