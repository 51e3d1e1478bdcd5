"""The unit of work of a subscriptions handler: repositories over one transaction's
session, and `commit()`, which writes what the aggregates recorded.

The transaction itself is the caller's (`Database.transaction()`, or the one
idempotency.run_once opens so that the buyer request is finished in it too): `commit()`
writes each change of every subscription the handler got from `subscriptions` as its
outbox event and its activity entry (store.write_changes), in that transaction, and
clears them; the transaction's end commits them with the change, or rolls all back.
"""
from services.common.events import first_delivery
from services.subscriptions import store
from services.subscriptions.models import Merchant, inbox


class SqlSubscriptions:
    """Subscriptions as the handler may see them; every one handed out is remembered,
    so the unit of work writes what it recorded."""

    def __init__(self, session):
        self._session = session
        self.seen = []

    def _saw(self, subscription):
        if subscription not in self.seen:
            self.seen.append(subscription)
        return subscription

    def add(self, subscription):
        """A new subscription (intake's), written now: a concurrent intake of the same
        external_id fails here (IntegrityError), to be run again (Database.retry_on_conflict)."""
        self._session.add(subscription)
        self._session.flush()
        self._saw(subscription)

    def by_external_id(self, merchant_id, external_id):
        """The subscription a merchant's checkout registered as `external_id`, or None."""
        found = store.find_by_external_id(self._session, merchant_id, external_id)
        return None if found is None else self._saw(found)

    def owned(self, identity, subscription_id):
        """The subscription if `identity` owns it (NotFound otherwise), to read."""
        return self._saw(store.buyer_subscription(self._session, identity, subscription_id))

    def lock(self, subscription_id, identity=None):
        """The subscription (if `identity` owns it, when given), to change: see store.lock_subscription."""
        return self._saw(store.lock_subscription(self._session, subscription_id, identity))

    def of_buyer(self, merchant_id, email):
        """The merchant's subscriptions of the buyer `email`, to change."""
        found = store.buyer_subscriptions_at(self._session, merchant_id, email)
        return [self._saw(subscription) for subscription in found]

    def claim_due_batch(self, now, limit, after=None):
        """Up to `limit` due subscriptions after `after`, locked: see store.claim_due_batch."""
        return [self._saw(subscription) for subscription in store.claim_due_batch(self._session, now, limit, after)]

    def current_cycle_number(self, subscription_id):
        return store.current_cycle_number(self._session, subscription_id)


class SqlQuotes:
    def __init__(self, session):
        self._session = session

    def add(self, quote):
        self._session.add(quote)
        self._session.flush()

    def of_subscription(self, subscription_id, quote_id):
        """The subscription's quote; NotFound (`quote_not_found`) otherwise."""
        return store.subscription_quote(self._session, subscription_id, quote_id)

    def get(self, quote_id):
        return store.quote_by_id(self._session, quote_id)

    def refresh(self, quote):
        """The quote as committed since it was read (its charge may have been settled meanwhile)."""
        self._session.refresh(quote)


class SqlOffers:
    def __init__(self, session):
        self._session = session

    def get(self, merchant_id, offer_id):
        return store.offer(self._session, merchant_id, offer_id)

    def options_for(self, subscription):
        """The offers the subscription's current offer may switch to, in its order."""
        return store.plan_options(self._session, subscription)


class SqlMerchants:
    def __init__(self, session):
        self._session = session

    def get(self, merchant_id):
        """The merchant, or None."""
        return self._session.get(Merchant, merchant_id)


class SqlContacts:
    def __init__(self, session):
        self._session = session

    def ensure(self, merchant_id, email):
        """`email` a contact of the merchant, so that every buyer of a subscription can
        log in, even if the checkout sent no contact."""
        store.ensure_contact(self._session, merchant_id, email)

    def card_holder(self, merchant_id, email):
        return store.card_holder(self._session, merchant_id, email)


class SqlUnitOfWork:
    def __init__(self, session, events, clock):
        self.session = session
        self._events = events
        self._clock = clock
        self.subscriptions = SqlSubscriptions(session)
        self.quotes = SqlQuotes(session)
        self.offers = SqlOffers(session)
        self.merchants = SqlMerchants(session)
        self.contacts = SqlContacts(session)

    def first_delivery(self, event_id, event_type):
        """Whether this event is seen for the first time (the inbox keeps its id)."""
        return first_delivery(self.session, inbox, event_id, event_type)

    def commit(self):
        # Not flushed here: the transaction's end writes it all, so a concurrent change
        # found there (SQLite's StaleDataError) is the caller's to handle, as before.
        for subscription in self.subscriptions.seen:
            store.write_changes(self.session, self._events, subscription, self._clock())
