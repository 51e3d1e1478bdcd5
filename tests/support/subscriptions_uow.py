"""The subscriptions unit of work in memory, for the handler tests: repositories over
dicts, and a `commit()` that keeps what the aggregates recorded as `events` and
`activity` (in the order written) instead of writing them to a database."""
from services.common.errors import NotFound
from services.common.identity import owner_filters
from services.subscriptions.domain.subscription import ANNOUNCEMENT, EVENT
from services.subscriptions.store import SUBSCRIPTION_NOT_FOUND


class FakeSubscriptions:
    def __init__(self):
        self.by_id = {}
        self.seen = []

    def _saw(self, subscription):
        if subscription not in self.seen:
            self.seen.append(subscription)
        return subscription

    def add(self, subscription):
        self.by_id[subscription.id] = subscription
        self._saw(subscription)

    def by_external_id(self, merchant_id, external_id):
        for subscription in self.by_id.values():
            if (subscription.merchant_id, subscription.external_id) == (merchant_id, external_id):
                return self._saw(subscription)
        return None

    def owned(self, identity, subscription_id):
        found = self.by_id.get(subscription_id)
        owner = owner_filters(identity)
        if found is None or any(getattr(found, key) != value for key, value in owner.items()):
            raise NotFound(SUBSCRIPTION_NOT_FOUND)
        return self._saw(found)

    def lock(self, subscription_id, identity=None):
        if identity is not None:
            return self.owned(identity, subscription_id)
        if subscription_id not in self.by_id:
            raise NotFound(SUBSCRIPTION_NOT_FOUND)
        return self._saw(self.by_id[subscription_id])

    def claim_due_batch(self, now, limit, after=None):
        due = sorted(
            (subscription for subscription in self.by_id.values()
             if subscription.renewal_run_at is not None and subscription.renewal_run_at <= now
             and subscription.status in ("active", "past_due")
             and (after is None or (subscription.renewal_run_at, subscription.id) > after)),
            key=lambda subscription: (subscription.renewal_run_at, subscription.id),
        )[:limit]
        return [self._saw(subscription) for subscription in due]

    def current_cycle_number(self, subscription_id):
        found = self.by_id.get(subscription_id)
        return None if found is None else found.cycle_number


class FakeQuotes:
    def __init__(self):
        self.by_id = {}

    def add(self, quote):
        self.by_id[quote.id] = quote

    def of_subscription(self, subscription_id, quote_id):
        quote = self.by_id.get(quote_id)
        if quote is None or quote.subscription_id != subscription_id:
            raise NotFound("Quote not found.", code="quote_not_found")
        return quote

    def get(self, quote_id):
        return self.by_id.get(quote_id)

    def refresh(self, quote):
        pass  # one copy of each quote: always as committed


class FakeOffers:
    def __init__(self, offers=()):
        self.by_key = {(offer.merchant_id, offer.id): offer for offer in offers}

    def get(self, merchant_id, offer_id):
        return self.by_key.get((merchant_id, offer_id))

    def options_for(self, subscription):
        return [self.by_key[(subscription.merchant_id, offer_id)]
                for offer_id in subscription.offer.plan_change_options or []]


class FakeMerchants:
    def __init__(self, merchants=()):
        self.by_id = {merchant.id: merchant for merchant in merchants}

    def get(self, merchant_id):
        return self.by_id.get(merchant_id)


class FakeContacts:
    def __init__(self):
        # (merchant id, e-mail) of each contact; the card holder details of those that have them.
        self.known = set()
        self.holders = {}

    def ensure(self, merchant_id, email):
        self.known.add((merchant_id, email))

    def card_holder(self, merchant_id, email):
        return self.holders.get((merchant_id, email))


class FakeUnitOfWork:
    def __init__(self, offers=(), merchants=()):
        self.subscriptions = FakeSubscriptions()
        self.quotes = FakeQuotes()
        self.offers = FakeOffers(offers)
        self.merchants = FakeMerchants(merchants)
        self.contacts = FakeContacts()
        self.inbox = set()
        # What commit() wrote: (event type, data) and (subscription id, actor, action, details).
        self.events = []
        self.activity = []
        self.commits = 0

    def first_delivery(self, event_id, event_type):
        if (event_id, event_type) in self.inbox:
            return False
        self.inbox.add((event_id, event_type))
        return True

    def commit(self):
        for subscription in self.subscriptions.seen:
            for change in subscription.changes:
                action = change.action
                if change.kind == ANNOUNCEMENT:
                    self.events.append((change.action, change.data))
                    continue
                if change.kind == EVENT:
                    self.events.append((change.action, {
                        "subscription_id": subscription.id, "email": subscription.email, "actor": change.actor,
                        **change.data,
                    }))
                    action = action.removeprefix("subscription_")
                self.activity.append((subscription.id, change.actor, action, change.data))
            subscription.changes.clear()
        self.commits += 1

    def event_types(self):
        return [event_type for event_type, _ in self.events]
