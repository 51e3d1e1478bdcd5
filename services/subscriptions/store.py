"""Reads and writes of the subscriptions database, inside a caller's session.

Every buyer-facing read goes through `owned_row`/`owned_rows`, limited to what the
session's identity owns; a row outside it is indistinguishable from one that does not exist.
"""
import uuid

from sqlalchemy import exists, select

from services.common import clock
from services.common.errors import NotFound, ValidationFailed
from services.common.identity import InvalidEmail, normalize_email, owned_row, owned_rows
from services.subscriptions import domain
from services.subscriptions.models import Activity, Contact, Merchant, Offer, Subscription


def upsert_merchant(session, data):
    merchant = session.get(Merchant, data["id"]) or Merchant(id=data["id"])
    for key, value in data.items():
        setattr(merchant, key, value)
    session.add(merchant)
    return merchant


def upsert_offer(session, data):
    if session.get(Merchant, data["merchant_id"]) is None:
        raise ValidationFailed("Unknown merchant.", fields={"merchant_id": ["Unknown merchant."]})
    offer = session.get(Offer, (data["merchant_id"], data["id"]))
    if offer is None:
        offer = Offer(merchant_id=data["merchant_id"], id=data["id"], plan_change_options=[])
    merchant_offer_ids = set(
        session.scalars(select(Offer.id).where(Offer.merchant_id == data["merchant_id"]))
    )
    problems = domain.offer_problems(
        {"plan_change_options": offer.plan_change_options, **data}, merchant_offer_ids,
    )
    if problems:
        raise ValidationFailed(f"Invalid offer: {', '.join(sorted(problems))}.", fields=problems)
    for key, value in data.items():
        setattr(offer, key, value)
    session.add(offer)
    return offer


def upsert_contact(session, data):
    if session.get(Merchant, data["merchant_id"]) is None:
        raise ValidationFailed("Unknown merchant.", fields={"merchant_id": ["Unknown merchant."]})
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


def create_subscription(session, data):
    """A new subscription with its first activity entry; the caller records the event."""
    fields = {}
    if session.get(Merchant, data["merchant_id"]) is None:
        fields["merchant_id"] = ["Unknown merchant."]
    offer = session.get(Offer, (data["merchant_id"], data["offer_id"]))
    if offer is None:
        fields["offer_id"] = ["Not an offer of this merchant."]
    else:
        fields.update(domain.subscription_problems(data, offer.max_installments))
    if fields:
        raise ValidationFailed(f"Invalid subscription: {', '.join(sorted(fields))}.", fields=fields)

    now = clock.now()
    payment = data["payment"]
    next_charge_at = data["next_charge_at"] or domain.initial_next_charge_at(data["status"], data["cycle_end"])
    subscription = Subscription(
        id=str(uuid.uuid4()),
        merchant_id=data["merchant_id"],
        external_id=data["external_id"],
        offer_id=data["offer_id"],
        email=data["email"],
        status=data["status"],
        cancel_reason=data["cancel_reason"],
        cancel_at_period_end=False,
        cycle_number=data["cycle_number"],
        cycle_start=data["cycle_start"],
        cycle_end=data["cycle_end"],
        next_charge_at=next_charge_at,
        payment_method=payment["method"],
        card_brand=payment["card_brand"],
        card_last4=payment["card_last4"],
        card_exp=payment["card_exp"],
        payment_token=payment["token"],
        installments=data["installments"],
        balance_cents=0,
        created_at=data["created_at"] or now,
    )
    session.add(subscription)
    _ensure_contact(session, data["merchant_id"], data["email"])
    session.add(Activity(
        subscription_id=subscription.id, at=now, actor="merchant", action="subscription_created",
        details={"external_id": data["external_id"], "offer_id": data["offer_id"], "status": data["status"]},
    ))
    session.flush()
    return subscription


def _ensure_contact(session, merchant_id, email):
    # Every buyer of a subscription can log in, even if the checkout sent no contact.
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
    return owned_row(session, Subscription, identity, "Subscription not found.", id=subscription_id)
