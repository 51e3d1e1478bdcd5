"""The buyer's routes of the JSON API; the identity always comes from the session."""
from services.common.web import http, json_response


class BuyerRoutes:
    """Mixin of the gateway service."""

    @http("GET", "/api/v1/me/orders")
    def list_orders(self, request):
        identity = self._identity(request)
        return json_response({"orders": self.billing.list_orders(identity)})

    @http("GET", "/api/v1/me/orders/<code>")
    def get_order(self, request, code):
        identity = self._identity(request)
        return json_response({"order": self.billing.get_order(identity, code)})

    @http("GET", "/api/v1/me/subscriptions")
    def list_subscriptions(self, request):
        identity = self._identity(request)
        return json_response({"subscriptions": self.subscriptions.list_subscriptions(identity)})

    @http("GET", "/api/v1/me/subscriptions/<subscription_id>")
    def get_subscription(self, request, subscription_id):
        identity = self._identity(request)
        return json_response({"subscription": self.subscriptions.get_subscription(identity, subscription_id)})
