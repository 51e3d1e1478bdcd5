"""Reads and writes of the subscriptions database, inside a caller's session.

Every buyer-facing read goes through `owned_row`/`owned_rows`, limited to what the
session's identity owns; a row outside it is indistinguishable from one that does not exist.
"""
from typing import NamedTuple

from sqlalchemy import exists, or_, select, tuple_, update

from services.common.db import is_postgres
from services.common.errors import Conflict, NotFound, ValidationFailed
from services.common.identity import InvalidEmail, normalize_email, owned_row, owned_rows, owner_filters
from services.subscriptions import domain
from services.subscriptions.domain.subscription import ANNOUNCEMENT, EVENT
from services.subscriptions.models import (
    Activity, BuyerRequest, Contact, Merchant, Offer, PlanChangeQuote, Subscription, subscriptions,
)

SUBSCRIPTION_NOT_FOUND = "Subscription not found."


def upsert_merchant(session, data):
    merchant = session.get(Merchant, data["id"]) or Merchant(id=data["id"])
    for key, value in data.items():
        setattr(merchant, key, value)
    session.add(merchant)
    return merchant


class OfferWrite(NamedTuple):
    """An offer written, the names of the terms that changed, and whether it is new."""

    offer: Offer
    changed: list
    created: bool = False


def known_merchant(session, merchant_id):
    """The merchant a write names, or a refusal naming `merchant_id`."""
    found = session.get(Merchant, merchant_id)
    if found is None:
        raise ValidationFailed("Unknown merchant.", fields={"merchant_id": ["Unknown merchant."]})
    return found


def upsert_offer(session, data):
    """The operator's raw write: the offer created, or changed as `data` says (as
    create_offer and update_offer answer)."""
    found = offer(session, known_merchant(session, data["merchant_id"]).id, data["id"])
    if found is None:
        return create_offer(session, data)
    return update_offer(session, data["merchant_id"], data["id"], data)


def create_offer(session, data):
    """A new offer of a known merchant; an id already taken is a conflict."""
    owner = known_merchant(session, data["merchant_id"])
    if offer(session, owner.id, data["id"]) is not None:
        raise Conflict("This merchant already has an offer with this id.", code="offer_exists",
                       fields={"id": ["Already taken by another offer of this merchant."]})
    created = Offer(merchant_id=owner.id, id=data["id"], plan_change_options=[], status=domain.ACTIVE)
    return _write_offer(session, owner, created, data, in_use=False)._replace(created=True)


def update_offer(session, merchant_id, offer_id, changes):
    """The merchant's offer with `changes` (only the fields sent); another merchant's is not found."""
    found = merchant_offer(session, merchant_id, offer_id)
    return _write_offer(session, merchant(session, merchant_id), found, changes, offer_in_use(session, found))


def _write_offer(session, owner, target, changes, in_use):
    """`target` changed as `changes` says if every rule holds (domain.offer_problems,
    accepted_methods_problems, offer_change_problems), else nothing is."""
    current = {name: getattr(target, name) for name in ("id", *domain.OFFER_TERMS)}
    wanted = {**current, **{name: value for name, value in changes.items() if name in domain.OFFER_TERMS}}
    merchant_offer_ids = set(session.scalars(select(Offer.id).where(Offer.merchant_id == owner.id)))
    problems = {
        **domain.offer_problems(wanted, merchant_offer_ids),
        # Checked when they change: a merchant allowing fewer methods later leaves its offers be.
        **(domain.accepted_methods_problems(changes["payment_methods_accepted"], owner.payment_methods_allowed)
           if "payment_methods_accepted" in changes else {}),
        **domain.offer_change_problems(current, wanted, in_use),
    }
    if problems:
        raise ValidationFailed(f"Invalid offer: {', '.join(sorted(problems))}.", fields=problems)
    changed = [name for name in domain.OFFER_TERMS if wanted[name] != current[name]]
    for name, value in wanted.items():
        setattr(target, name, value)
    session.add(target)
    session.flush()
    return OfferWrite(target, changed)


def offer_in_use(session, found):
    """Whether any subscription is on `found`, or about to switch to it."""
    return session.scalar(select(exists().where(
        subscriptions.c.merchant_id == found.merchant_id,
        or_(subscriptions.c.offer_id == found.id, subscriptions.c.pending_offer_id == found.id),
    )))


def merchant_offer(session, merchant_id, offer_id):
    """The merchant's offer; another merchant's is not found, like one that does not exist."""
    found = offer(session, merchant_id, offer_id) if isinstance(offer_id, str) else None
    if found is None:
        raise NotFound("Offer not found.")
    return found


def _page(session, query, key, cursor, limit, newest_first=False):
    """Up to `limit` rows of `query` after `cursor` in `key` order (descending when
    `newest_first`), and the cursor of the next page (or None)."""
    if cursor is not None:
        query = query.where(key < cursor if newest_first else key > cursor)
    rows = session.scalars(query.order_by(key.desc() if newest_first else key).limit(limit + 1)).all()
    return rows[:limit], (getattr(rows[limit - 1], key.key) if len(rows) > limit else None)


def offers_page(session, merchant_id, cursor, limit, status=None):
    query = select(Offer).where(Offer.merchant_id == merchant(session, merchant_id).id)
    if status is not None:
        query = query.where(Offer.status == status)
    return _page(session, query, Offer.id, cursor, limit)


def merchants_page(session, cursor, limit):
    return _page(session, select(Merchant), Merchant.id, cursor, limit)


def customers_page(session, merchant_id, email, document, cursor, limit):
    """The merchant's contacts with `email` or `document` (both normalized), by id."""
    query = select(Contact).where(Contact.merchant_id == merchant(session, merchant_id).id)
    query = query.where(Contact.email == email) if email is not None else query.where(Contact.document == document)
    return _page(session, query, Contact.id, cursor, limit)


def customer_subscriptions_page(session, merchant_id, email, cursor, limit):
    """The merchant's subscriptions of the buyer `email`, by id."""
    query = select(Subscription).filter_by(merchant_id=merchant(session, merchant_id).id, email=email)
    return _page(session, query, Subscription.id, cursor, limit)


def buyer_subscriptions_at(session, merchant_id, email):
    """The merchant's subscriptions of the buyer `email`, by id; NotFound when the
    buyer is none of the merchant's (another merchant's buyer is not found either)."""
    if not customer_exists(session, email, merchant_id):
        raise NotFound("Customer not found.")
    return session.scalars(
        select(Subscription).filter_by(merchant_id=merchant_id, email=normalize_email(email)).order_by(Subscription.id)
    ).all()


def merchant_subscription(session, merchant_id, subscription_id):
    """The merchant's subscription; another merchant's is not found, like one that does not exist."""
    found = session.scalars(
        select(Subscription).filter_by(id=subscription_id, merchant_id=merchant_id)).one_or_none()
    if found is None:
        raise NotFound(SUBSCRIPTION_NOT_FOUND)
    return found


def activity_page(session, subscription_id, cursor, limit):
    """A subscription's activity, newest first."""
    query = select(Activity).filter_by(subscription_id=subscription_id)
    return _page(session, query, Activity.id, cursor, limit, newest_first=True)


def create_merchant(session, data):
    if session.get(Merchant, data["id"]) is not None:
        raise Conflict("A merchant with this id exists.", code="merchant_exists",
                       fields={"id": ["Already taken by another merchant."]})
    return upsert_merchant(session, data)


def upsert_contact(session, data):
    known_merchant(session, data["merchant_id"])
    contact = session.scalars(
        select(Contact).filter_by(merchant_id=data["merchant_id"], email=data["email"])
    ).one_or_none() or Contact(merchant_id=data["merchant_id"], email=data["email"])
    for key, value in data.items():
        setattr(contact, key, value)
    session.add(contact)
    return contact


def find_by_external_id(session, merchant_id, external_id):
    return session.scalars(
        select(Subscription).filter_by(merchant_id=merchant_id, external_id=external_id)
    ).one_or_none()


def card_holder(session, merchant_id, email):
    """What the merchant knows of its buyer that a card form asks of the holder, or None."""
    contact = session.scalars(select(Contact).filter_by(merchant_id=merchant_id, email=email)).one_or_none()
    if contact is None or contact.document is None:
        return None
    return {
        "name": contact.name, "document": contact.document, "phone": contact.phone,
        "postal_code": contact.address_postal_code, "address_number": contact.address_number,
    }


def ensure_contact(session, merchant_id, email):
    """`email` a contact of the merchant (added if it is not one yet)."""
    if session.scalars(select(Contact.id).filter_by(merchant_id=merchant_id, email=email)).first() is None:
        session.add(Contact(merchant_id=merchant_id, email=email))


def customer_exists(session, email, merchant_id=None):
    """Whether anyone sold to `email` (at `merchant_id`, when given)."""
    try:
        email = normalize_email(email)
    except InvalidEmail:
        return False  # intake refuses such an address, so no buyer has it
    condition = Contact.email == email
    if merchant_id is not None:
        condition = condition & (Contact.merchant_id == merchant_id)
    return session.scalar(select(exists().where(condition)))


def merchant(session, merchant_id):
    found = session.get(Merchant, merchant_id) if isinstance(merchant_id, str) else None
    if found is None:
        raise NotFound("Merchant not found.")
    return found


def buyer_subscriptions(session, identity):
    return owned_rows(session, Subscription, identity, Subscription.created_at.desc(), Subscription.id)


def buyer_subscription(session, identity, subscription_id):
    if not isinstance(subscription_id, str):
        raise NotFound(SUBSCRIPTION_NOT_FOUND)
    return owned_row(session, Subscription, identity, SUBSCRIPTION_NOT_FOUND, id=subscription_id)


def lock_subscription(session, subscription_id, identity=None):
    """The subscription (if `identity` owns it, when given), to change in this transaction.

    On PostgreSQL its row stays locked until the transaction ends, so writers of one
    subscription run one after the other, even across a call to billing. On SQLite a
    concurrent change shows at commit instead (the row's version, see models.py).
    """
    if not isinstance(subscription_id, str):
        raise NotFound(SUBSCRIPTION_NOT_FOUND)
    owner = owner_filters(identity) if identity is not None else {}
    if is_postgres(session.get_bind()):
        # The row alone: locked through the join of its offer, a row that a concurrent
        # change just moved to another offer would be re-checked against the old offer
        # and skipped, as if it did not exist.
        session.execute(select(Subscription.id).where(Subscription.id == subscription_id).with_for_update())
    query = select(Subscription).filter_by(id=subscription_id, **owner).execution_options(populate_existing=True)
    subscription = session.scalars(query).one_or_none()
    if subscription is None:
        raise NotFound(SUBSCRIPTION_NOT_FOUND)
    return subscription


def _for_update(session, query, **options):
    # Only the subscription's row: its offers and merchant are joined in for reading.
    return query.with_for_update(of=Subscription, **options) if is_postgres(session.get_bind()) else query


def _due(now):
    return (
        Subscription.renewal_run_at <= now,
        Subscription.status.in_(domain.CHARGEABLE_STATUSES),
    )


def claim_due_batch(session, now, limit, after=None):
    """Up to `limit` of the subscriptions the renewal job should visit now, oldest first,
    locked for this transaction; on PostgreSQL those another replica holds are skipped
    (`FOR UPDATE SKIP LOCKED`), so two replicas never take the same one. `after`, the
    (renewal_run_at, id) of the last one of the previous batch, continues from there."""
    query = select(Subscription).where(*_due(now))
    if after is not None:
        query = query.where(tuple_(Subscription.renewal_run_at, Subscription.id) > tuple_(*after))
    query = (
        query.order_by(Subscription.renewal_run_at, Subscription.id).limit(limit)
        .execution_options(populate_existing=True)
    )
    return session.scalars(_for_update(session, query, skip_locked=True)).all()


def current_cycle_number(session, subscription_id):
    """The subscription's cycle number as committed (no lock), or None if unknown."""
    return session.scalar(select(Subscription.cycle_number).where(Subscription.id == subscription_id))


def offer(session, merchant_id, offer_id):
    return session.get(Offer, (merchant_id, offer_id))


def merchant_offers(session, merchant_id):
    return session.scalars(select(Offer).where(Offer.merchant_id == merchant_id).order_by(Offer.id)).all()


def update_merchant_settings(session, merchant_id, settings):
    """A known merchant's settings replaced by `settings`; an unknown one is not found."""
    found = merchant(session, merchant_id)
    for key, value in settings.items():
        setattr(found, key, value)
    return found


def set_plan_change_options(session, merchant_id, offer_id, options):
    """The offers `offer_id` may switch to, all of the same merchant; another
    merchant's offer is not found."""
    return update_offer(session, merchant_id, offer_id, {"plan_change_options": list(options)})


def plan_options(session, subscription):
    """The offers the subscription's current offer may switch to."""
    option_ids = subscription.offer.plan_change_options or []
    if not option_ids:
        return []
    offers = session.scalars(
        select(Offer).where(Offer.merchant_id == subscription.merchant_id, Offer.id.in_(option_ids),
                            Offer.status == domain.ACTIVE)
    ).all()
    order = {offer_id: position for position, offer_id in enumerate(option_ids)}
    return sorted(offers, key=lambda offer: order[offer.id])


def subscription_quote(session, subscription_id, quote_id):
    quote = session.get(PlanChangeQuote, quote_id) if isinstance(quote_id, str) else None
    if quote is None or quote.subscription_id != subscription_id:
        raise NotFound("Quote not found.", code="quote_not_found")
    return quote


def quote_by_id(session, quote_id):
    return session.get(PlanChangeQuote, quote_id)


def activity(session, subscription_id):
    """Newest first, in the order it was written."""
    return session.scalars(
        select(Activity).filter_by(subscription_id=subscription_id).order_by(Activity.id.desc())
    ).all()


def payments_not_applied(session, merchant_id=None, limit=100):
    """Paid orders recorded as not applied (`Subscription.record_payment_not_applied`),
    newest first: each as its activity entry with the subscription's merchant and buyer."""
    query = (
        select(Activity.at, Activity.details, Subscription.id, Subscription.merchant_id, Subscription.email)
        .join(Subscription, Subscription.id == Activity.subscription_id)
        .where(Activity.action == "payment_not_applied")
    )
    if merchant_id is not None:
        query = query.where(Subscription.merchant_id == merchant_id)
    rows = session.execute(query.order_by(Activity.id.desc()).limit(limit))
    return [
        # Entries written before the event existed named the kind of order "for".
        {"at": at, "subscription_id": subscription_id, "merchant_id": merchant, "email": email,
         "order_code": details["order_code"], "amount_cents": details["amount_cents"],
         "kind": details.get("kind", details.get("for"))}
        for at, details, subscription_id, merchant, email in rows
    ]


def write_changes(session, events, subscription, at):
    """Write what `subscription` recorded (domain/subscription.py `Change`), in this
    transaction and in order, then forget it: each event for other systems with the
    activity entry the buyer reads (the event's data), an activity entry alone, or an
    event alone."""
    for change in subscription.changes:
        action, details = change.action, change.data
        if change.kind == ANNOUNCEMENT:
            events.record(session, change.action, subscription.merchant_id, change.data)
            continue
        if change.kind == EVENT:
            envelope = events.record(session, change.action, subscription.merchant_id, {
                "subscription_id": subscription.id, "email": subscription.email, "actor": change.actor,
                **change.data,
            })
            action = action.removeprefix("subscription_")
            details = {key: value for key, value in envelope["data"].items()
                       if key not in ("subscription_id", "email", "actor")}
        session.add(Activity(subscription_id=subscription.id, at=at, actor=change.actor, action=action,
                             details=details))
    subscription.changes.clear()


# -- buyer requests by idempotency key

def buyer_request(session, owner, idempotency_key):
    """The request `owner` (domain.request_owner) made with this key, or None."""
    email, merchant_scope = owner
    return session.scalars(
        select(BuyerRequest).filter_by(email=email, merchant_scope=merchant_scope, idempotency_key=idempotency_key)
    ).one_or_none()


def start_buyer_request(session, owner, idempotency_key, operation, fingerprint, now):
    email, merchant_scope = owner
    row = BuyerRequest(
        email=email, merchant_scope=merchant_scope, idempotency_key=idempotency_key, operation=operation,
        fingerprint=fingerprint, status="running", started_at=now,
    )
    session.add(row)
    session.flush()
    return row.id


def take_over_buyer_request(session, abandoned, now):
    """Restart an abandoned request; False if a concurrent repeat took it over first,
    or the first attempt finished meanwhile."""
    taken = session.execute(
        update(BuyerRequest)
        .where(BuyerRequest.id == abandoned.id, BuyerRequest.started_at == abandoned.started_at,
               BuyerRequest.status == "running")
        .values(started_at=now)
        .execution_options(synchronize_session=False)
    )
    return taken.rowcount == 1


def finish_buyer_request(session, request_id, now, response=None, refusal=None):
    """Store the request's answer; False if another attempt at it (the first one, still
    running when this one took it over) stored its answer first, which stays."""
    finished = session.execute(
        update(BuyerRequest).where(BuyerRequest.id == request_id, BuyerRequest.status == "running")
        .values(status="done", response=response, refusal=refusal, completed_at=now)
        .execution_options(synchronize_session=False)
    )
    return finished.rowcount == 1


def forget_buyer_request(session, request_id, claimed_at):
    """Release a request still running as claimed at `claimed_at`; one a repeat took
    over since, or whose answer another attempt stored, stays."""
    session.execute(BuyerRequest.__table__.delete().where(
        BuyerRequest.id == request_id, BuyerRequest.started_at == claimed_at, BuyerRequest.status == "running"))


def buyer_request_by_id(session, request_id):
    return session.get(BuyerRequest, request_id)
