"""Tables of the billing service: processor accounts, orders (vendas), refunds, payment
methods, card-entry tickets and their rate-limit counters; and, apart, the sandbox
processor's side."""
from datetime import date, datetime

from sqlalchemy import JSON, ForeignKey, MetaData, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.billing.processors.sandbox_tables import sandbox_tables
from services.common.db import NAMING_CONVENTION, UTCDateTime
from services.common.outbox import outbox_table


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ProcessorAccount(Base):
    """A merchant's account at a payment processor. Its credentials (API key, the
    webhook token the processor sends back) are kept only sealed (credentials.py);
    the hint is all of the API key anything may show."""

    __tablename__ = "processor_accounts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(String(64), unique=True)
    processor: Mapped[str] = mapped_column(String(30))
    environment: Mapped[str] = mapped_column(String(20))
    sealed_credentials: Mapped[str] = mapped_column(Text)
    api_key_hint: Mapped[str] = mapped_column(String(4))
    # Who hears of every change of the account: the merchant's owners.
    notify_emails: Mapped[list] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PaymentMethod(Base):
    """A card as the processor knows it: its token and what a buyer may be shown.

    Never a card number or CVV; those stay between the card form and the processor.
    """

    __tablename__ = "payment_methods"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(String(64))
    email: Mapped[str] = mapped_column(String(254), index=True)
    token: Mapped[str] = mapped_column(String(200), unique=True)
    brand: Mapped[str] = mapped_column(String(20))
    last4: Mapped[str] = mapped_column(String(4))
    exp: Mapped[str | None] = mapped_column(String(7))
    # The account that issued the token (none: the installation's PAYMENT_PROCESSOR),
    # and the processor's customer it belongs to where the processor has customers.
    processor_account_id: Mapped[str | None] = mapped_column(ForeignKey("processor_accounts.id"))
    customer_ref: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Order(Base):
    """One purchase, or one charge of a subscription cycle, with its payment."""

    __tablename__ = "orders"
    __table_args__ = (UniqueConstraint("merchant_id", "external_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # What buyers see and type ("PED-7KQ2M4ZA").
    code: Mapped[str] = mapped_column(String(12), unique=True)
    merchant_id: Mapped[str] = mapped_column(String(64))
    # The checkout's own id (intake is idempotent by it); none for charges billing makes.
    external_id: Mapped[str | None] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(254), index=True)
    buyer_name: Mapped[str | None] = mapped_column(String(200))
    buyer_document: Mapped[str | None] = mapped_column(String(18))
    buyer_phone: Mapped[str | None] = mapped_column(String(30))
    # The address as it was at purchase time.
    address: Mapped[dict | None] = mapped_column(JSON)
    product_name: Mapped[str] = mapped_column(String(200))
    offer_id: Mapped[str | None] = mapped_column(String(64))
    subscription_id: Mapped[str | None] = mapped_column(String(36), index=True)
    cycle_number: Mapped[int | None]
    amount_cents: Mapped[int]
    installments: Mapped[int] = mapped_column(default=1)
    # Indexed for the reconciler, which looks for `pending_confirmation`.
    status: Mapped[str] = mapped_column(String(30), index=True)
    payment_method: Mapped[str] = mapped_column(String(20))
    payment_method_id: Mapped[str | None] = mapped_column(ForeignKey("payment_methods.id"))
    card_brand: Mapped[str | None] = mapped_column(String(20))
    card_last4: Mapped[str | None] = mapped_column(String(4))
    boleto_line: Mapped[str | None] = mapped_column(String(47))
    boleto_due_date: Mapped[date | None]
    # As the processor gave them: the 44 digits (else derived from the line when shown)
    # and its PDF of the boleto (none from the sandbox: the portal prints its own page).
    boleto_barcode: Mapped[str | None] = mapped_column(String(44))
    boleto_pdf_url: Mapped[str | None] = mapped_column(String(500))
    pix_code: Mapped[str | None] = mapped_column(Text)
    # Derived from the operation that charges ("renewal:<id>:<cycle>"): one charge each.
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    # What the charge is for (plan_change, renewal, retry); none for a checkout's order.
    kind: Mapped[str | None] = mapped_column(String(20))
    # The processor that charged it, its id for the charge, and why it was refused.
    processor: Mapped[str | None] = mapped_column(String(30))
    # The merchant's account it was charged through (none: the installation's processor).
    processor_account_id: Mapped[str | None] = mapped_column(ForeignKey("processor_accounts.id"))
    processor_reference: Mapped[str | None] = mapped_column(String(100))
    decline_reason: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Refund(Base):
    """One request to give back (part of) an order's payment, with its own states
    (domain.REFUND_STATUSES); the order becomes refunded or partially_refunded only
    when the processor confirms."""

    __tablename__ = "refunds"
    # The requester's key: a repeat of it is the same refund, never a second one.
    __table_args__ = (UniqueConstraint("merchant_id", "request_key"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    merchant_id: Mapped[str] = mapped_column(String(64))
    request_key: Mapped[str] = mapped_column(String(255))
    amount_cents: Mapped[int]
    reason: Mapped[str | None] = mapped_column(String(500))
    # merchant (its API), system (a payment not applied) or operator.
    actor: Mapped[str] = mapped_column(String(20))
    # Indexed for the reconciler, which looks for `pending`.
    status: Mapped[str] = mapped_column(String(20), index=True)
    # The processor and account it is asked of: the order's (none: no processor of ours).
    processor: Mapped[str | None] = mapped_column(String(30))
    processor_account_id: Mapped[str | None] = mapped_column(ForeignKey("processor_accounts.id"))
    processor_reference: Mapped[str | None] = mapped_column(String(100))
    failure_reason: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CardEntryTicket(Base):
    """One buyer's permission to enter one card for one subscription, used once.

    Only the SHA-256 of the ticket is kept: the ticket itself is a bearer secret.
    """

    __tablename__ = "card_entry_tickets"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    ticket_digest: Mapped[str] = mapped_column(String(64), unique=True)
    merchant_id: Mapped[str] = mapped_column(String(64))
    email: Mapped[str] = mapped_column(String(254))
    subscription_id: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Each card submitted counts, valid or not: a ticket is not for card testing.
    attempts: Mapped[int] = mapped_column(default=0)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    payment_method_id: Mapped[str | None] = mapped_column(ForeignKey("payment_methods.id"))
    # The holder's details the merchant knows (schemas.CardHolderPrefillSchema), to prefill the
    # form; dropped once the ticket is used.
    holder: Mapped[dict | None] = mapped_column(JSON(none_as_null=True))


class CardEntryWindow(Base):
    """How many cards one client address submitted in one fixed window."""

    __tablename__ = "card_entry_windows"
    __table_args__ = (UniqueConstraint("address", "window_start"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    address: Mapped[str] = mapped_column(String(45))
    window_start: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    attempts: Mapped[int] = mapped_column(default=0)


outbox = outbox_table(Base.metadata)
# The sandbox processor stands in for a system outside billing (see sandbox_tables).
sandbox = sandbox_tables(Base.metadata)
