"""nameko entrypoints of the subscriptions service: load, act, dump."""
from nameko.rpc import rpc

from services.common.db import Database
from services.common.envelope import EventType, event_catalog
from services.common.errors import EXPECTED_ERRORS, NotFound, ValidationFailed
from services.common.outbox import Outbox
from services.common.rpc import Pingable
from services.common.schemas import IdentitySchema
from services.common.validation import load
from services.subscriptions import store
from services.subscriptions.models import outbox
from services.subscriptions.schemas import (
    ContactSchema, MerchantSchema, OfferSchema, SubscriptionCreatedSchema, SubscriptionDetailSchema,
    SubscriptionInputSchema, SubscriptionSchema,
)

EVENTS = event_catalog(
    EventType("subscription_created", SubscriptionCreatedSchema()),
)

IDENTITY = IdentitySchema()
MERCHANT = MerchantSchema()
OFFER = OfferSchema()
CONTACT = ContactSchema()
SUBSCRIPTION_INPUT = SubscriptionInputSchema()
SUBSCRIPTION = SubscriptionSchema()
SUBSCRIPTION_DETAIL = SubscriptionDetailSchema()


class SubscriptionsService(Pingable):
    name = "subscriptions"

    db = Database("SUBSCRIPTIONS_DB_URL")
    events = Outbox("SUBSCRIPTIONS_DB_URL", outbox, EVENTS)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def upsert_merchant(self, merchant):
        data = load(MERCHANT, merchant)
        return self.db.retry_on_conflict(lambda session: MERCHANT.dump(store.upsert_merchant(session, data)))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def upsert_offer(self, offer):
        data = load(OFFER, offer)
        return self.db.retry_on_conflict(lambda session: OFFER.dump(store.upsert_offer(session, data)))

    @rpc(expected_exceptions=EXPECTED_ERRORS, sensitive_arguments=("contact.document",))
    def upsert_contact(self, contact):
        data = load(CONTACT, contact)
        return self.db.retry_on_conflict(lambda session: CONTACT.dump(store.upsert_contact(session, data)))

    @rpc(expected_exceptions=EXPECTED_ERRORS, sensitive_arguments=("subscription.payment.token",))
    def create_subscription(self, subscription):
        """Register a checkout's subscription; a repeat of its external_id returns the first."""
        data = load(SUBSCRIPTION_INPUT, subscription)

        def work(session):
            existing = store.find_by_external_id(session, data["merchant_id"], data["external_id"])
            if existing is not None:
                return SUBSCRIPTION.dump(existing)
            created = store.create_subscription(session, data)
            self.events.record(session, "subscription_created", created.merchant_id, {
                "subscription_id": created.id,
                "external_id": created.external_id,
                "offer_id": created.offer_id,
                "email": created.email,
                "status": created.status,
                "cycle_end": created.cycle_end,
            })
            return SUBSCRIPTION.dump(created)

        return self.db.retry_on_conflict(work)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def customer_exists(self, email, merchant_id=None):
        if not isinstance(email, str):
            raise ValidationFailed("An e-mail is a string.", fields={"email": ["Not a valid string."]})
        with self.db.transaction() as session:
            return store.customer_exists(session, email, merchant_id)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def get_merchant(self, merchant_id):
        """A merchant's profile and self-service settings (branding, support, SSO origins)."""
        with self.db.transaction() as session:
            return MERCHANT.dump(store.merchant(session, merchant_id))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def list_subscriptions(self, identity):
        identity = load(IDENTITY, identity)
        with self.db.transaction() as session:
            return SUBSCRIPTION.dump(store.buyer_subscriptions(session, identity), many=True)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def get_subscription(self, identity, subscription_id):
        identity = load(IDENTITY, identity)
        if not isinstance(subscription_id, str):
            raise NotFound("Subscription not found.")
        with self.db.transaction() as session:
            return SUBSCRIPTION_DETAIL.dump(store.buyer_subscription(session, identity, subscription_id))
