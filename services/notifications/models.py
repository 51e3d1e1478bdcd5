"""notifications' own tables: the e-mails it sends, the webhooks it delivers.

An event's e-mail is stored whole (subject, bodies, Message-ID) when the event arrives,
so it can be sent, retried and resent exactly as written. A login e-mail leaves no
body, link or code behind: its row says to whom, which kind and what happened.
"""
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, MetaData, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.db import NAMING_CONVENTION, UTCDateTime
from services.common.events import inbox_table
from services.common.outbox import outbox_table

QUEUED = "queued"
SENDING = "sending"
SENT = "sent"
FAILED = "failed"
DROPPED = "dropped"
STATUSES = (QUEUED, SENDING, SENT, FAILED, DROPPED)

PENDING = "pending"
DELIVERING = "delivering"
DELIVERED = "delivered"
DELIVERY_STATUSES = (PENDING, DELIVERING, DELIVERED, FAILED)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class OutgoingEmail(Base):
    """One e-mail: queued, being sent, sent, failed for good, or dropped as too late."""

    __tablename__ = "outgoing_emails"
    __table_args__ = (
        Index("ix_outgoing_emails_status_created_at", "status", "created_at"),
        Index("ix_outgoing_emails_status_next_attempt_at", "status", "next_attempt_at"),
        # One e-mail of each kind per event, however often the event arrives.
        UniqueConstraint("event_id", "kind", name="uq_outgoing_emails_event_id_kind"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(50))
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The event that asked for it (none for a login e-mail, an RPC command).
    event_id: Mapped[str | None] = mapped_column(String(36))
    merchant_id: Mapped[str | None] = mapped_column(String(64))
    locale: Mapped[str | None] = mapped_column(String(10))
    message_id: Mapped[str | None] = mapped_column(String(255))
    text_body: Mapped[str | None] = mapped_column(Text)
    html_body: Mapped[str | None] = mapped_column(Text)
    # Images the HTML shows inline, drawn when the message is built: Content-ID → the
    # text its QR code holds (the pix e-mail's code).
    inline_qr_codes: Mapped[dict | None] = mapped_column(JSON)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A sender that dies while sending leaves its claim; past this moment another takes it.
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Transient failures are retried until then (for a login e-mail: its link's expiry).
    retry_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebhookSettings(Base):
    """A merchant's signing secret; its endpoints hang off it."""

    __tablename__ = "webhook_settings"

    merchant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    secret: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WebhookEndpoint(Base):
    """Where a merchant wants its events, and which ones (none listed: all of them).

    Endpoints a merchant removes are kept inactive, so their delivery log still reads.
    """

    __tablename__ = "webhook_endpoints"
    __table_args__ = (UniqueConstraint("merchant_id", "url", name="uq_webhook_endpoints_merchant_id_url"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("webhook_settings.merchant_id"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    # Space-separated event types; empty means every event.
    event_types: Mapped[str] = mapped_column(Text)
    active: Mapped[bool]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WebhookDelivery(Base):
    """One event for one endpoint, with the body exactly as it is POSTed and signed."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "endpoint_id", name="uq_webhook_deliveries_event_id_endpoint_id"),
        Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_merchant_id_created_at", "merchant_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(String(64))
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id"))
    event_id: Mapped[str] = mapped_column(String(36))
    event_type: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    retry_until: Mapped[datetime] = mapped_column(UTCDateTime)


class WebhookAttempt(Base):
    """The delivery log: one row per POST, with what the merchant's server answered."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(ForeignKey("webhook_deliveries.id"), index=True)
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)


outbox = outbox_table(Base.metadata)
inbox = inbox_table(Base.metadata)
