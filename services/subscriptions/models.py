"""Tables of the subscriptions service: merchants, offers, contacts, subscriptions,
their activity, plan-change quotes, buyer requests by idempotency key; the subscription
aggregate and its quotes (domain/subscription.py) mapped onto theirs imperatively."""
from datetime import datetime

from sqlalchemy import (
    JSON, BigInteger, Boolean, Column, ForeignKey, ForeignKeyConstraint, Integer, MetaData, String, Table,
    UniqueConstraint, and_, event,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, foreign, mapped_column, relationship

from services.common.db import NAMING_CONVENTION, UTCDateTime
from services.common.events import inbox_table
from services.common.outbox import outbox_table
from services.subscriptions.domain.rules import accepted_methods
from services.subscriptions.domain.subscription import PlanChangeQuote, Subscription

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
    # The methods a sale of this offer may be paid with and its buyers may switch to,
    # among its merchant's allowed ones (`accepted_methods`); None: every method the
    # merchant allows, and a checkout's sale is not held to them, as before offers had their own.
    payment_methods_accepted: Mapped[list | None] = mapped_column(JSON)
    # active, or archived: no new sales, no switching to it; its subscriptions go on.
    status: Mapped[str] = mapped_column(String(20), default="active")
    merchant: Mapped[Merchant] = relationship(lazy="joined", viewonly=True)

    @property
    def accepted_methods(self):
        return accepted_methods(self.merchant.payment_methods_allowed, self.payment_methods_accepted)


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


# The subscription aggregate and its quotes are plain classes (domain/subscription.py),
# mapped onto these tables below.
subscriptions = Table(
    "subscriptions", Base.metadata,
    Column("id", String(36), primary_key=True),
    Column("merchant_id", ForeignKey("merchants.id"), nullable=False),
    # The merchant's (checkout's) own id: what makes intake idempotent.
    Column("external_id", String(100), nullable=False),
    Column("offer_id", String(64), nullable=False),
    Column("email", String(254), nullable=False, index=True),
    Column("status", String(20), nullable=False),
    # Who ended it (buyer, merchant, non_payment); the buyer's own reason and words.
    Column("cancel_reason", String(20)),
    Column("cancel_feedback", String(30)),
    Column("cancel_comment", String(500)),
    Column("cancel_at_period_end", Boolean, nullable=False, default=False),
    Column("canceled_at", UTCDateTime),
    Column("cycle_number", Integer, nullable=False),
    Column("cycle_start", UTCDateTime, nullable=False),
    Column("cycle_end", UTCDateTime, nullable=False),
    # When the buyer is charged next, as the page shows it (None: never again).
    Column("next_charge_at", UTCDateTime, index=True),
    # When the renewal job takes this subscription up next; the timer claims rows by it.
    Column("renewal_run_at", UTCDateTime, index=True),
    # Charges made for the renewal still unpaid (they number its idempotency keys), and
    # the method of the last one while its outcome is awaited: a boleto/pix not paid yet
    # (it stays payable, so it is asked about again, never issued twice) or an unknown card answer.
    Column("charge_attempts", Integer, nullable=False, default=0),
    # When the first attempt at the renewal still unpaid failed: its retries count from there.
    Column("first_failed_at", UTCDateTime),
    Column("waiting_charge_method", String(20)),
    Column("payment_method", String(20), nullable=False),
    Column("card_brand", String(20)),
    Column("card_last4", String(4)),
    Column("card_exp", String(7)),
    # The processor's token for the card; never a card number.
    Column("payment_token", String(200)),
    Column("installments", Integer, nullable=False, default=1),
    # Credit left over from a plan change, used by the next renewals.
    Column("balance_cents", Integer, nullable=False, default=0),
    # The one pending plan change: scheduled for the cycle end, or awaiting its boleto/pix payment.
    Column("pending_offer_id", String(64)),
    Column("pending_quote_id", String(36)),
    Column("pending_change_status", String(20)),
    # Bumped by every change, which only applies if the row still has the version read.
    # On PostgreSQL writers hold the row lock anyway; SQLite has no row locks, and a
    # worker must not hold its write lock while waiting on another service, so there
    # a concurrent change is detected here instead (StaleDataError) and nothing applies.
    Column("version", Integer, nullable=False, default=0),
    Column("created_at", UTCDateTime, nullable=False, index=True),
    UniqueConstraint("merchant_id", "external_id"),
    ForeignKeyConstraint(["merchant_id", "offer_id"], ["offers.merchant_id", "offers.id"]),
)


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


plan_change_quotes = Table(
    "plan_change_quotes", Base.metadata,
    Column("id", String(36), primary_key=True),
    Column("subscription_id", ForeignKey("subscriptions.id"), nullable=False, index=True),
    # The state it was computed from; a quote no longer matching it cannot be confirmed.
    Column("from_offer_id", String(64), nullable=False),
    Column("cycle_number", Integer, nullable=False),
    Column("payment_method", String(20), nullable=False),
    Column("to_offer_id", String(64), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("credit_cents", Integer, nullable=False),
    Column("charge_cents", Integer, nullable=False),
    Column("balance_cents", Integer, nullable=False),
    Column("max_installments", Integer, nullable=False),
    Column("takes_effect", String(20), nullable=False),
    Column("effective_at", UTCDateTime),
    Column("cycle_start", UTCDateTime, nullable=False),
    Column("cycle_end", UTCDateTime, nullable=False),
    Column("next_renewal_at", UTCDateTime, nullable=False),
    Column("next_renewal_cents", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    # open → scheduled | awaiting_payment → applied, or dropped (undone, unpaid).
    Column("status", String(20), nullable=False, default="open"),
    Column("installments", Integer),
    Column("order_code", String(40)),
)


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


Base.registry.map_imperatively(PlanChangeQuote, plan_change_quotes)
Base.registry.map_imperatively(Subscription, subscriptions, version_id_col=subscriptions.c.version, properties={
    # Read-only: rows are written by their key columns, these load what the aggregate reads.
    "merchant": relationship(Merchant, lazy="joined", innerjoin=True, viewonly=True),
    "offer": relationship(Offer, lazy="joined", innerjoin=True, viewonly=True, primaryjoin=and_(
        foreign(subscriptions.c.merchant_id) == Offer.merchant_id, foreign(subscriptions.c.offer_id) == Offer.id)),
    "pending_offer": relationship(Offer, lazy="joined", viewonly=True, primaryjoin=and_(
        foreign(subscriptions.c.merchant_id) == Offer.merchant_id,
        foreign(subscriptions.c.pending_offer_id) == Offer.id)),
    "pending_quote": relationship(PlanChangeQuote, viewonly=True, primaryjoin=(
        foreign(subscriptions.c.pending_quote_id) == plan_change_quotes.c.id)),
})


@event.listens_for(Subscription, "load")
def _no_changes_yet(subscription, _context):
    # A loaded aggregate is built without its __init__: it starts with nothing recorded.
    subscription.changes = []


outbox = outbox_table(Base.metadata)
inbox = inbox_table(Base.metadata)
