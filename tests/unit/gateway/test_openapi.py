"""The OpenAPI document lists every route of the JSON API, and only those, and is a
valid OpenAPI 3 document whose request schemas are the ones the routes load."""
import inspect
import json
import re

import schemathesis
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR

from gateway import schemas
from gateway.openapi import ROUTES, openapi_document
from gateway.service import GatewayService
from services.common.web import PortalHttp

# Served beside the API but not part of it: the document itself.
NOT_OPERATIONS = {("GET", "/api/v1/openapi.json")}


def gateway_api_routes():
    found = set()
    for _name, function in inspect.getmembers(GatewayService, inspect.isfunction):
        for entrypoint in getattr(function, ENTRYPOINT_EXTENSIONS_ATTR, ()):
            if isinstance(entrypoint, PortalHttp) and entrypoint.url.startswith("/api/v1/"):
                path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", entrypoint.url)
                found |= {(method.strip(), path) for method in entrypoint.method.split(",")}
    return found - NOT_OPERATIONS


def document():
    return json.loads(openapi_document("http://portal.test"))


def test_every_json_api_route_is_documented_and_nothing_else():
    documented = {(route.method, route.path) for route in ROUTES}
    assert documented == gateway_api_routes()
    paths = document()["paths"]
    assert {(method.upper(), path) for path, operations in paths.items() for method in operations} == documented


def test_the_document_is_valid_openapi():
    # schemathesis refuses to load a document that breaks the OpenAPI 3.0 schema.
    loaded = schemathesis.openapi.from_dict(document())
    operations = [result.ok() for result in loaded.get_all_operations()]
    assert len(operations) == len(ROUTES)


def test_bodies_are_described_by_the_schemas_the_routes_load():
    components = document()["components"]["schemas"]
    intake = components["SubscriptionIntakeRequest"]
    assert set(intake["properties"]) == set(schemas.SubscriptionIntakeRequest().fields)
    assert set(intake["required"]) == {
        name for name, field in schemas.SubscriptionIntakeRequest().fields.items() if field.required}
    # Unknown keys are refused (a stray card number never gets in), and the document says so.
    assert intake["additionalProperties"] is False
    assert components["CardPaymentRequest"]["properties"]["card_last4"]["pattern"] == r"^\d{4}$"


def test_buyer_and_merchant_operations_name_their_credentials():
    paths = document()["paths"]
    assert paths["/api/v1/me/orders"]["get"]["security"] == [{"session": []}]
    assert paths["/api/v1/merchant/orders"]["post"]["security"] == [{"apiKey": []}]
    assert paths["/api/v1/auth/login-links"]["post"]["security"] == []
    cancel = paths["/api/v1/me/subscriptions/{subscription_id}/cancel"]["post"]
    assert "Idempotency-Key" in {parameter["name"] for parameter in cancel["parameters"]}
