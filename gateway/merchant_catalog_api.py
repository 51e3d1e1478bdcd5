"""The merchant's catalog and webhook delivery log in the JSON API, scoped to the API
key's merchant (`_merchant`): offers listed, created, changed and archived (never
deleted: subscriptions stay on them), and deliveries listed and replayed.

Lists are pages: `?cursor=<next_cursor of the page before>&limit=…`. The owning
services check every rule again (subscriptions: an offer in use keeps its price and
periodicity; notifications: a replay goes only where any delivery may), and another
merchant's offer or delivery answers 404 like one that does not exist.
"""
from gateway.schemas import DeliveriesQuery, OfferCreateRequest, OffersQuery, OfferUpdateRequest
from services.common.validation import load
from services.common.web import http, json_response, read_json


def checked_query(request, schema):
    """The query string, checked by `schema` (a field it does not know is refused)."""
    return load(schema, request.args.to_dict())


class MerchantCatalogRoutes:
    """Mixin of the gateway service."""

    @http("GET", "/api/v1/merchant/offers")
    def list_merchant_offers(self, request):
        merchant_id = self._merchant(request)
        return json_response(self.subscriptions.list_offers(merchant_id, **checked_query(request, OffersQuery())))

    @http("POST", "/api/v1/merchant/offers")
    def create_merchant_offer(self, request):
        merchant_id = self._merchant(request)
        body = load(OfferCreateRequest(), read_json(request))
        return json_response({"offer": self.subscriptions.create_offer(merchant_id, body)}, status=201)

    @http("PATCH", "/api/v1/merchant/offers/<offer_id>")
    def update_merchant_offer(self, request, offer_id):
        merchant_id = self._merchant(request)
        body = load(OfferUpdateRequest(), read_json(request))
        return json_response({"offer": self.subscriptions.update_offer(merchant_id, offer_id, body)})

    @http("POST", "/api/v1/merchant/offers/<offer_id>/archive")
    def archive_merchant_offer(self, request, offer_id):
        """No new sales and no switching to it; its subscriptions go on as they are."""
        merchant_id = self._merchant(request)
        return json_response({"offer": self.subscriptions.update_offer(merchant_id, offer_id, {"status": "archived"})})

    @http("GET", "/api/v1/merchant/webhooks/deliveries")
    def list_merchant_deliveries(self, request):
        merchant_id = self._merchant(request)
        page = self.notifications.list_merchant_deliveries(merchant_id, **checked_query(request, DeliveriesQuery()))
        return json_response(page, headers={"Cache-Control": "no-store"})

    @http("POST", "/api/v1/merchant/webhooks/deliveries/<delivery_id>/replay")
    def replay_merchant_delivery(self, request, delivery_id):
        merchant_id = self._merchant(request)
        return json_response({"delivery": self.notifications.replay_merchant_delivery(merchant_id, delivery_id)})
