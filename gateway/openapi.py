"""The JSON API's OpenAPI document, built with apispec from the gateway's marshmallow
schemas, and the docs page that renders it with Swagger UI's files served from here.

`ROUTES` is the one list of the API's operations; a test checks it against the
gateway's own routes, so an operation cannot be added without being documented.
"""
import html
import json
import mimetypes
import re
from functools import lru_cache

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from swagger_ui_bundle import swagger_ui_path
from werkzeug.wrappers import Response

from gateway import schemas
from services.common.errors import NotFound
from services.common.web import http

# Who authenticates an operation: a buyer's session (the cookie, or the token an app
# sends as Bearer) or a merchant's API key (Bearer); None for the login steps.
SESSION, API_KEY = "session", "apiKey"
LOGIN, BUYER, MERCHANT = "login", "buyer", "merchant"
IDEMPOTENT = "idempotent"
KEY_REQUIRED = "key_required"


class Route:
    def __init__(self, method, path, tag, summary, answer=None, status=200, body=None, auth=None, *traits, query=None):
        self.method, self.path, self.tag, self.summary = method, path, tag, summary
        self.answer, self.status, self.body, self.auth = answer, status, body, auth
        self.traits = set(traits)
        # The schema of its query string, if it takes one.
        self.query = query

    @property
    def path_parameters(self):
        return re.findall(r"{(\w+)}", self.path)


SUBSCRIPTION = "/api/v1/me/subscriptions/{subscription_id}"
OFFER = "/api/v1/merchant/offers/{offer_id}"
DELIVERIES = "/api/v1/merchant/webhooks/deliveries"

# The merchant's catalog and delivery log (gateway/merchant_catalog_api.py).
CATALOG_ROUTES = [
    Route("GET", "/api/v1/merchant/offers", MERCHANT, "A page of the merchant's offers, by id",
          schemas.OffersAnswer, 200, None, API_KEY, query=schemas.OffersQuery),
    Route("POST", "/api/v1/merchant/offers", MERCHANT,
          "Create an offer (its methods among the merchant's allowed ones)",
          schemas.OfferAnswer, 201, schemas.OfferCreateRequest, API_KEY),
    Route("PATCH", OFFER, MERCHANT,
          "Change an offer's terms (one with subscriptions keeps its price and periodicity: 400 naming the field)",
          schemas.OfferAnswer, 200, schemas.OfferUpdateRequest, API_KEY),
    Route("POST", f"{OFFER}/archive", MERCHANT, "Archive an offer: no new sales, its subscriptions go on",
          schemas.OfferAnswer, 200, None, API_KEY),
    Route("GET", DELIVERIES, MERCHANT, "A page of webhook deliveries, newest first, with their attempts",
          schemas.DeliveriesAnswer, 200, None, API_KEY, query=schemas.DeliveriesQuery),
    Route("POST", f"{DELIVERIES}/{{delivery_id}}/replay", MERCHANT,
          "Deliver a finished delivery again (an address the portal may not POST to: 422 naming url)",
          schemas.DeliveryAnswer, 200, None, API_KEY),
]

# The merchant's support API (gateway/merchant_support_api.py).
CUSTOMER = "/api/v1/merchant/customers/{email}"
FOR_BUYER = "/api/v1/merchant/subscriptions/{subscription_id}"
SUPPORT_ROUTES = [
    Route("GET", "/api/v1/merchant/customers", MERCHANT,
          "A page of the merchant's buyers with an e-mail or a CPF/CNPJ (send one of them)",
          schemas.CustomersAnswer, 200, None, API_KEY, query=schemas.CustomersQuery),
    Route("GET", f"{CUSTOMER}/subscriptions", MERCHANT,
          "A page of a buyer's subscriptions at the merchant, by id",
          schemas.CustomerSubscriptionsAnswer, 200, None, API_KEY, query=schemas.PageQuery),
    Route("GET", f"{CUSTOMER}/orders", MERCHANT,
          "A page of a buyer's orders at the merchant, newest first (another merchant's buyer: an empty page)",
          schemas.CustomerOrdersAnswer, 200, None, API_KEY, query=schemas.PageQuery),
    Route("GET", f"{FOR_BUYER}/activity", MERCHANT,
          "A page of what happened to a subscription and who did it, newest first",
          schemas.ActivityPageAnswer, 200, None, API_KEY, query=schemas.PageQuery),
    Route("POST", f"{FOR_BUYER}/cancel", MERCHANT,
          "Cancel for the buyer, now or at the period's end (the merchant as the actor; a past-due one ends now)",
          schemas.ChangedAnswer, 200, schemas.MerchantCancelRequest, API_KEY),
    Route("DELETE", f"{FOR_BUYER}/cancel", MERCHANT,
          "Undo a cancellation scheduled for the period's end (the merchant as the actor)",
          schemas.ChangedAnswer, 200, None, API_KEY),
    Route("POST", f"{CUSTOMER}/login-link", MERCHANT,
          "E-mail the buyer a login link as if they asked (same rate limit), noted in their subscriptions' activity",
          schemas.AcceptedAnswer, 202, None, API_KEY),
    Route("POST", f"{FOR_BUYER}/plan-change/quote", MERCHANT,
          "Quote a plan change for the buyer (valid 10 minutes; among the offer's plan-change options)",
          schemas.QuoteAnswer, 201, schemas.PlanChangeQuoteRequest, API_KEY),
    Route("POST", f"{FOR_BUYER}/plan-change", MERCHANT,
          "Change the buyer's plan as quoted, charging exactly the quote (the merchant as the actor)",
          schemas.ChangedAnswer, 200, schemas.PlanChangeRequest, API_KEY),
]

ROUTES = [
    Route("POST", "/api/v1/auth/login-links", LOGIN, "Ask for a login e-mail (the same answer whoever asks)",
          schemas.LoginLinkAnswer, 202, schemas.LoginLinkRequest),
    Route("POST", "/api/v1/auth/sessions", LOGIN, "Redeem a login link's token and/or its code for a session",
          schemas.SessionAnswer, 201, schemas.SessionCreateRequest),
    Route("DELETE", "/api/v1/auth/sessions/current", LOGIN, "Log out: the session ends on the server",
          None, 204, None, SESSION),
    Route("GET", "/api/v1/sso/{ticket}", LOGIN, "Redeem a merchant's one-time SSO ticket for a session",
          schemas.SessionAnswer),
    Route("GET", "/api/v1/me/sessions", BUYER, "Where this buyer is logged in", schemas.SessionsAnswer,
          200, None, SESSION),
    Route("DELETE", "/api/v1/me/sessions/{session_id}", BUYER, "End one of this buyer's sessions",
          None, 204, None, SESSION),
    Route("GET", "/api/v1/me/orders", BUYER, "The buyer's orders", schemas.OrdersAnswer, 200, None, SESSION),
    Route("GET", "/api/v1/me/orders/{code}", BUYER, "One order", schemas.OrderAnswer, 200, None, SESSION),
    Route("GET", "/api/v1/me/subscriptions", BUYER, "The buyer's subscriptions", schemas.SubscriptionsAnswer,
          200, None, SESSION),
    Route("GET", SUBSCRIPTION, BUYER, "One subscription, with what the merchant lets the buyer do",
          schemas.SubscriptionAnswer, 200, None, SESSION),
    Route("GET", f"{SUBSCRIPTION}/plan-options", BUYER, "The plans this subscription may switch to",
          schemas.PlanOptionsAnswer, 200, None, SESSION),
    Route("POST", f"{SUBSCRIPTION}/plan-change/quote", BUYER, "Quote a plan change (valid 10 minutes)",
          schemas.QuoteAnswer, 201, schemas.PlanChangeQuoteRequest, SESSION, IDEMPOTENT),
    Route("POST", f"{SUBSCRIPTION}/plan-change", BUYER, "Change plan as quoted, charging exactly the quote",
          schemas.ChangedAnswer, 200, schemas.PlanChangeRequest, SESSION, IDEMPOTENT),
    Route("DELETE", f"{SUBSCRIPTION}/plan-change", BUYER, "Undo a scheduled plan change",
          schemas.ChangedAnswer, 200, None, SESSION),
    Route("POST", f"{SUBSCRIPTION}/payment-method", BUYER, "Change the payment method (a past-due one is charged now)",
          schemas.ChangedAnswer, 200, schemas.PaymentMethodChangeRequest, SESSION, IDEMPOTENT),
    Route("POST", f"{SUBSCRIPTION}/card-entry", BUYER, "A one-time link to billing's card form (a repeat: a new one)",
          schemas.CardEntryAnswer, 201, None, SESSION, IDEMPOTENT),
    Route("POST", f"{SUBSCRIPTION}/cancel", BUYER, "Cancel (now, or at the period's end as the merchant set)",
          schemas.ChangedAnswer, 200, schemas.CancelRequest, SESSION, IDEMPOTENT),
    Route("DELETE", f"{SUBSCRIPTION}/cancel", BUYER, "Undo a cancellation scheduled for the period's end",
          schemas.ChangedAnswer, 200, None, SESSION),
    Route("GET", f"{SUBSCRIPTION}/activity", BUYER, "What happened to the subscription, newest first",
          schemas.ActivityAnswer, 200, None, SESSION),
    Route("POST", "/api/v1/merchant/sso-tickets", MERCHANT, "A one-time SSO link for one of the merchant's buyers",
          schemas.SsoTicketAnswer, 201, schemas.SsoTicketRequest, API_KEY),
    Route("POST", "/api/v1/merchant/subscriptions", MERCHANT,
          "Intake: a subscription a checkout sold (a repeat of external_id answers the first)",
          schemas.SubscriptionAnswer, 201, schemas.SubscriptionIntakeRequest, API_KEY),
    Route("POST", "/api/v1/merchant/orders", MERCHANT,
          "Intake: an order a checkout made (a repeat of external_id answers the first)",
          schemas.OrderAnswer, 201, schemas.OrderIntakeRequest, API_KEY),
    Route("POST", "/api/v1/merchant/orders/{code}/refunds", MERCHANT,
          "Refund an order, wholly or partly (never more than was paid); pending until the processor confirms",
          schemas.RefundAnswer, 201, schemas.RefundRequest, API_KEY, KEY_REQUIRED),
    Route("GET", "/api/v1/merchant/orders/{code}/refunds", MERCHANT, "The order's refunds, oldest first",
          schemas.RefundsAnswer, 200, None, API_KEY),
    Route("POST", "/api/v1/merchant/orders/{code}/refunds/{refund_id}/done", MERCHANT,
          "Confirm a pending_manual refund the merchant gave back itself (a repeat answers it as it stands)",
          schemas.RefundAnswer, 200, None, API_KEY),
    Route("GET", "/api/v1/merchant/settings", MERCHANT, "The merchant's self-service settings",
          schemas.SettingsAnswer, 200, None, API_KEY),
    Route("PUT", "/api/v1/merchant/settings", MERCHANT, "Replace the merchant's self-service settings",
          schemas.SettingsAnswer, 200, schemas.MerchantSettingsRequest, API_KEY),
    Route("PUT", "/api/v1/merchant/offers/{offer_id}/plan-change-options", MERCHANT,
          "The offers one offer may switch to", schemas.OfferAnswer, 200, schemas.PlanChangeOptionsRequest, API_KEY),
    Route("GET", "/api/v1/merchant/webhooks", MERCHANT, "Webhook endpoints and the signing secret",
          schemas.WebhookSettingsAnswer, 200, None, API_KEY),
    Route("PUT", "/api/v1/merchant/webhooks", MERCHANT, "Replace the webhook endpoints",
          schemas.WebhookSettingsAnswer, 200, schemas.WebhookSettingsRequest, API_KEY),
    *CATALOG_ROUTES,
    *SUPPORT_ROUTES,
]

IDEMPOTENCY_KEY = {
    "in": "header", "name": "Idempotency-Key", "required": False,
    "description": (
        "Keys are the session's own: its buyer's, within the merchant an SSO session is scoped to (or every "
        "merchant, for the buyer's own login); the same key from another scope is another request. Same key and "
        "body: the stored answer (for card-entry, a fresh link: a link works once and is never stored); another "
        "body: 422; the first still running: 409."
    ),
    "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,255}$"},
}


REFUND_KEY = {
    **IDEMPOTENCY_KEY, "required": True,
    "description": "The merchant's key for this refund: a repeat answers the first refund and refunds nothing "
                   "more; the same key with another order or amount: 400 `idempotency_key_reused`.",
}


def _operation(route):
    operation = {
        "tags": [route.tag], "summary": route.summary,
        "operationId": f"{route.method.lower()}_{re.sub(r'[^a-z0-9]+', '_', route.path.lower()).strip('_')}",
        "parameters": [
            {"in": "path", "name": name, "required": True, "schema": {"type": "string", "minLength": 1}}
            for name in route.path_parameters
        ],
        "responses": {
            str(route.status): {"description": "Done."} if route.answer is None else {
                "description": "Done.", "content": {"application/json": {"schema": route.answer}},
            },
            # 400 validation (naming each field), 401, 403, 404, 409, 422, 429, 503.
            "default": {"description": "Refused: {\"error\": {code, message, fields}}.",
                        "content": {"application/json": {"schema": schemas.ErrorAnswer}}},
        },
        "security": [{route.auth: []}] if route.auth else [],
    }
    if route.query is not None:
        operation["parameters"].append({"in": "query", "schema": route.query})
    if IDEMPOTENT in route.traits:
        operation["parameters"].append(IDEMPOTENCY_KEY)
    if KEY_REQUIRED in route.traits:
        operation["parameters"].append(REFUND_KEY)
    if route.body is not None:
        operation["requestBody"] = {
            # The cancel reason is optional, and so is its body.
            "required": route.body is not schemas.CancelRequest,
            "content": {"application/json": {"schema": route.body}},
        }
    return operation


@lru_cache(maxsize=4)
def openapi_document(base_url):
    spec = APISpec(
        title="Portal do Cliente API", version="1", openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        servers=[{"url": base_url}],
        info={"description": "Buyers (session), login, and merchants (API key). Errors are always "
                             "`{\"error\": {\"code\", \"message\", \"fields\"}}`."},
    )
    spec.components.security_scheme(SESSION, {
        "type": "http", "scheme": "bearer",
        "description": "The buyer's session token (browsers send the session cookie and X-CSRF-Token instead).",
    })
    spec.components.security_scheme(API_KEY, {
        "type": "http", "scheme": "bearer", "description": "The merchant's API key, pk_live_<prefix>_<secret>.",
    })
    operations = {}
    for route in ROUTES:
        operations.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    for path, path_operations in operations.items():
        spec.path(path=path, operations=path_operations)
    return json.dumps(spec.to_dict(), ensure_ascii=False)


# Swagger UI's own files, from the swagger-ui-bundle package; the page loads nothing else.
DOCS_ASSETS = {"swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js"}
# The Content-Security-Policy runs only scripts that carry the response's nonce.
DOCS_PAGE = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Portal do Cliente API</title>
<link rel="stylesheet" href="/api/docs/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script nonce="{nonce}" src="/api/docs/swagger-ui-bundle.js"></script>
<script nonce="{nonce}" src="/api/docs/swagger-ui-standalone-preset.js"></script>
<script nonce="{nonce}" src="/static/api-docs.js"></script>
</body>
</html>
"""


class OpenApiRoutes:
    """Mixin of the gateway service."""

    @http("GET", "/api/v1/openapi.json")
    def openapi_json(self, request):
        return Response(openapi_document(self.config["PORTAL_BASE_URL"]), mimetype="application/json")

    @http("GET", "/api/docs")
    def api_docs(self, request):
        return Response(DOCS_PAGE.format(nonce=html.escape(request.csp_nonce)), mimetype="text/html")

    @http("GET", "/api/docs/<name>")
    def api_docs_asset(self, request, name):
        if name not in DOCS_ASSETS:
            raise NotFound("No such file.")
        return Response((swagger_ui_path / name).read_bytes(), mimetype=mimetypes.guess_type(name)[0],
                        headers={"Cache-Control": "public, max-age=86400"})

