"""Tables of the subscriptions service: merchants, offers, contacts, subscriptions."""
from datetime import datetime

from sqlalchemy import (
    JSON, BigInteger, ForeignKey, ForeignKeyConstraint, Integer, MetaData, String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from services.common.db import NAMING_CONVENTION, UTCDateTime
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
    cancel_reason: Mapped[str | None] = mapped_column(String(20))
    cancel_at_period_end: Mapped[bool] = mapped_column(default=False)
    cycle_number: Mapped[int]
    cycle_start: Mapped[datetime] = mapped_column(UTCDateTime)
    cycle_end: Mapped[datetime] = mapped_column(UTCDateTime)
    # The renewal timer claims rows by this column.
    next_charge_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    payment_method: Mapped[str] = mapped_column(String(20))
    card_brand: Mapped[str | None] = mapped_column(String(20))
    card_last4: Mapped[str | None] = mapped_column(String(4))
    card_exp: Mapped[str | None] = mapped_column(String(7))
    # The processor's token for the card; never a card number.
    payment_token: Mapped[str | None] = mapped_column(String(200))
    installments: Mapped[int] = mapped_column(default=1)
    # Credit left over from a plan change, used by the next renewals.
    balance_cents: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)

    # Read-only: rows are written by their key columns, these only load what a view shows.
    merchant: Mapped[Merchant] = relationship(lazy="joined", innerjoin=True, viewonly=True)
    offer: Mapped[Offer] = relationship(lazy="joined", innerjoin=True, viewonly=True)


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


outbox = outbox_table(Base.metadata)
