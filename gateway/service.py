"""The portal's HTTP face: turns requests into RPC calls and answers as HTML or JSON.

Routes live in mixins by audience (ops, login, buyer, merchant, pages); this class
holds what they share: configuration, the RPC proxies (every call has a deadline) and
the session lookup. `csrf.guard_routes` refuses forged state-changing requests before
any route runs. Every input is validated before any RPC, and the buyer's identity
always comes from the session, never from the request body.
"""
from nameko.dependency_providers import Config

from gateway import cookies, csrf
from gateway.auth_api import AuthRoutes
from gateway.buyer_api import BuyerRoutes
from gateway.merchant_api import MerchantRoutes
from gateway.merchant_catalog_api import MerchantCatalogRoutes
from gateway.merchant_support_api import MerchantSupportRoutes
from gateway.merchant_webhooks_api import MerchantWebhookRoutes
from gateway.openapi import OpenApiRoutes
from gateway.ops import OpsRoutes
from gateway.pages import PortalPages
from services.common.errors import Unauthorized
from services.common.rpc import BrokerCheck, TimedRpc


@csrf.guard_routes
class GatewayService(
    OpsRoutes, AuthRoutes, BuyerRoutes, MerchantRoutes, MerchantWebhookRoutes, MerchantCatalogRoutes, OpenApiRoutes,
    MerchantSupportRoutes,
    PortalPages,
):
    name = "gateway"

    config = Config()
    # Every call is non-persistent (services.common.rpc): those to auth carry login
    # tokens, codes and session tokens.
    auth = TimedRpc("auth")
    subscriptions = TimedRpc("subscriptions")
    billing = TimedRpc("billing")
    notifications = TimedRpc("notifications")
    # /readyz: asked over the same link, never a connection per probe.
    broker_answers = BrokerCheck()

    def _identity(self, request):
        token = cookies.session_token_from(request, self.config["PORTAL_BASE_URL"])
        if not token:
            raise Unauthorized("Faça login para continuar.", code="login_required")
        return self.auth.get_session(token)
