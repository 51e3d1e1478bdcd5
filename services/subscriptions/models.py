"""Tables of the subscriptions service: merchants, offers, contacts, subscriptions,
their activity, plan-change quotes, buyer requests by idempotency key."""
from datetime import datetime

from sqlalchemy import (
    JSON, BigInteger, ForeignKey, ForeignKeyConstraint, Integer, MetaData, String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from services.common.db import NAMING_CONVENTION, UTCDateTime
from services.common.events import inbox_table
from services.common.outbox import outbox_table

# BIGINT autoincrement on PostgreSQL; SQLite only autoincrements INTEGER keys.
BigId = BigInteger().with_variant(Integer, "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Merchant(Base):
    """Who sells, and what its buyers may do by themselves (all off by default)."""

    __tablename__ = "merchants"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    customer_can_change_payment_method: Mapped[bool] = mapped_column(default=False)
    customer_can_change_plan: Mapped[bool] = mapped_column(default=False)
    customer_can_cancel: Mapped[bool] = mapped_column(default=False)
    cancel_mode: Mapped[str] = mapped_column(String(20), default="at_period_end")
    payment_methods_allowed: Mapped[list] = mapped_column(JSON, default=list)
    support_email: Mapped[str | None] = mapped_column(String(254))
    support_phone: Mapped[str | None] = mapped_column(String(30))
    support_url: Mapped[str | None] = mapped_column(String(500))
    allowed_origins: Mapped[list] = mapped_column(JSON, default=list)
    brand_name: Mapped[str | None] = mapped_column(String(200))
    accent_color: Mapped[str | None] = mapped_column(String(7))


class Offer(Base):
    """What a subscription is on; ids are the merchant's own, unique per merchant."""

    __tablename__ = "offers"

    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    product_name: Mapped[str] = mapped_column(String(200))
    plan_name: Mapped[str] = mapped_column(String(200))
    price_cents: Mapped[int]
    periodicity_months: Mapped[int]
    max_installments: Mapped[int] = mapped_column(default=1)
    # Ids of offers of the same merchant this one may switch to.
    plan_change_options: Mapped[list] = mapped_column(JSON, default=list)


ADDRESS_FIELDS = ("street", "number", "complement", "district", "city", "state", "postal_code", "country")


class Contact(Base):
    """A buyer as one merchant knows them; the login checks that one exists."""

    __tablename__ = "contacts"
    __table_args__ = (UniqueConstraint("merchant_id", "email"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    email: Mapped[str] = mapped_column(String(254), index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    document: Mapped[str | None] = mapped_column(String(18))
    phone: Mapped[str | None] = mapped_column(String(30))
    address_street: Mapped[str | None] = mapped_column(String(200))
    address_number: Mapped[str | None] = mapped_column(String(20))
    address_complement: Mapped[str | None] = mapped_column(String(100))
    address_district: Mapped[str | None] = mapped_column(String(100))
    address_city: Mapped[str | None] = mapped_column(String(100))
    address_state: Mapped[str | None] = mapped_column(String(2))
    address_postal_code: Mapped[str | None] = mapped_column(String(9))
    address_country: Mapped[str | None] = mapped_column(String(2))

    @property
    def address(self):
        if self.address_street is None:
            return None
        return {field: getattr(self, f"address_{field}") for field in ADDRESS_FIELDS}

    @address.setter
    def address(self, value):
        for field in ADDRESS_FIELDS:
            setattr(self, f"address_{field}", (value or {}).get(field))


class Subscription(Base):
    __tablename__ = "subscriptions"
    __table_args__ = (
        UniqueConstraint("merchant_id", "external_id"),
        ForeignKeyConstraint(["merchant_id", "offer_id"], ["offers.merchant_id", "offers.id"]),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    # The merchant's (checkout's) own id: what makes intake idempotent.
    external_id: Mapped[str] = mapped_column(String(100))
    offer_id: Mapped[str] = mapped_column(String(64))
    email: Mapped[str] = mapped_column(String(254), index=True)
    status: Mapped[str] = mapped_column(String(20))
    # Who ended it (buyer, merchant, non_payment); the buyer's own reason and words.
    cancel_reason: Mapped[str | None] = mapped_column(String(20))
    cancel_feedback: Mapped[str | None] = mapped_column(String(30))
    cancel_comment: Mapped[str | None] = mapped_column(String(500))
    cancel_at_period_end: Mapped[bool] = mapped_column(default=False)
    canceled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cycle_number: Mapped[int]
    cycle_start: Mapped[datetime] = mapped_column(UTCDateTime)
    cycle_end: Mapped[datetime] = mapped_column(UTCDateTime)
    # When the buyer is charged next, as the page shows it (None: never again).
    next_charge_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # When the renewal job takes this subscription up next; the timer claims rows by it.
    renewal_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # Charges made for the renewal still unpaid (they number its idempotency keys), and
    # the method of the last one while its outcome is awaited: a boleto/pix not paid yet
    # (it stays payable, so it is asked about again, never issued twice) or an unknown card answer.
    charge_attempts: Mapped[int] = mapped_column(default=0)
    # When the first attempt at the renewal still unpaid failed: its retries count from there.
    first_failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    waiting_charge_method: Mapped[str | None] = mapped_column(String(20))
    payment_method: Mapped[str] = mapped_column(String(20))
    card_brand: Mapped[str | None] = mapped_column(String(20))
    card_last4: Mapped[str | None] = mapped_column(String(4))
    card_exp: Mapped[str | None] = mapped_column(String(7))
    # The processor's token for the card; never a card number.
    payment_token: Mapped[str | None] = mapped_column(String(200))
    installments: Mapped[int] = mapped_column(default=1)
    # Credit left over from a plan change, used by the next renewals.
    balance_cents: Mapped[int] = mapped_column(default=0)
    # The one pending plan change: scheduled for the cycle end, or awaiting its boleto/pix payment.
    pending_offer_id: Mapped[str | None] = mapped_column(String(64))
    pending_quote_id: Mapped[str | None] = mapped_column(String(36))
    pending_change_status: Mapped[str | None] = mapped_column(String(20))
    # Bumped by every change, which only applies if the row still has the version read.
    # On PostgreSQL writers hold the row lock anyway; SQLite has no row locks, and a
    # worker must not hold its write lock while waiting on another service, so there
    # a concurrent change is detected here instead (StaleDataError) and nothing applies.
    version: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)

    # Read-only: rows are written by their key columns, these only load what a view shows.
    merchant: Mapped[Merchant] = relationship(lazy="joined", innerjoin=True, viewonly=True)
    offer: Mapped[Offer] = relationship(lazy="joined", innerjoin=True, viewonly=True)
    pending_offer: Mapped[Offer | None] = relationship(
        lazy="joined", viewonly=True,
        primaryjoin="and_(foreign(Subscription.merchant_id) == Offer.merchant_id, "
                    "foreign(Subscription.pending_offer_id) == Offer.id)",
    )

    __mapper_args__ = {"version_id_col": version}


class Activity(Base):
    """What happened to a subscription, by whom: the buyer's "activity" page."""

    __tablename__ = "subscription_activity"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    subscription_id: Mapped[str] = mapped_column(ForeignKey("subscriptions.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    # "buyer", "merchant" or "system" (the renewal timer).
    actor: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(50))
    details: Mapped[dict] = mapped_column(JSON, default=dict)


class PlanChangeQuote(Base):
    """What a plan change costs, as the buyer was shown it; confirming charges exactly this."""

    __tablename__ = "plan_change_quotes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    subscription_id: Mapped[str] = mapped_column(ForeignKey("subscriptions.id"), index=True)
    # The state it was computed from; a quote no longer matching it cannot be confirmed.
    from_offer_id: Mapped[str] = mapped_column(String(64))
    cycle_number: Mapped[int]
    payment_method: Mapped[str] = mapped_column(String(20))
    to_offer_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(20))
    credit_cents: Mapped[int]
    charge_cents: Mapped[int]
    balance_cents: Mapped[int]
    max_installments: Mapped[int]
    takes_effect: Mapped[str] = mapped_column(String(20))
    effective_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cycle_start: Mapped[datetime] = mapped_column(UTCDateTime)
    cycle_end: Mapped[datetime] = mapped_column(UTCDateTime)
    next_renewal_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_renewal_cents: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # open → scheduled | awaiting_payment → applied, or dropped (undone, unpaid).
    status: Mapped[str] = mapped_column(String(20), default="open")
    installments: Mapped[int | None]
    order_code: Mapped[str | None] = mapped_column(String(40))


class BuyerRequest(Base):
    """A buyer request made with an Idempotency-Key, and the answer it got.

    A key is the buyer's within a merchant scope (domain.request_owner): the merchant
    a session is scoped to, or "" for the buyer's own login.
    """

    __tablename__ = "buyer_requests"
    __table_args__ = (UniqueConstraint("email", "merchant_scope", "idempotency_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(String(254))
    merchant_scope: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str] = mapped_column(String(255))
    operation: Mapped[str] = mapped_column(String(50))
    fingerprint: Mapped[str] = mapped_column(String(64))
    # running, then done with either a response or the refusal it answered.
    status: Mapped[str] = mapped_column(String(10))
    # None for a success whose answer holds a live secret (a card-entry link): never kept.
    response: Mapped[dict | None] = mapped_column(JSON)
    refusal: Mapped[dict | None] = mapped_column(JSON)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)


outbox = outbox_table(Base.metadata)
inbox = inbox_table(Base.metadata)
