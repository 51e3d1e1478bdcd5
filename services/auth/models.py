"""auth's own tables. Secrets (tokens, codes, nonces, tickets, API keys) are kept only as
SHA-256 hex digests."""
from datetime import datetime

from sqlalchemy import Index, Integer, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.db import NAMING_CONVENTION, UTCDateTime
from services.common.outbox import outbox_table

HASH_LENGTH = 64
# Long enough for any IPv6 address in text form.
ADDRESS_LENGTH = 45


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class LoginRequest(Base):
    """One ask for a login e-mail: its link token and 6-digit code, usable once before
    expiry, bound to the browser that asked by a nonce. Rows are kept whether or not an
    e-mail went out (the same work on both paths); they are also the rate-limit counts."""

    __tablename__ = "login_requests"
    __table_args__ = (
        Index("ix_login_requests_email_created_at", "email", "created_at"),
        Index("ix_login_requests_client_address_created_at", "client_address", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    token_hash: Mapped[str] = mapped_column(String(HASH_LENGTH), unique=True)
    code_hash: Mapped[str] = mapped_column(String(HASH_LENGTH))
    nonce_hash: Mapped[str | None] = mapped_column(String(HASH_LENGTH), unique=True)
    client_address: Mapped[str | None] = mapped_column(String(ADDRESS_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    consumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failed_code_attempts: Mapped[int] = mapped_column(Integer, default=0)


class LoginCodeFailure(Base):
    """A wrong code typed without the link, for the e-mail of the request it named: the
    daily per-e-mail cap on such tries counts these rows."""

    __tablename__ = "login_code_failures"
    __table_args__ = (Index("ix_login_code_failures_email_failed_at", "email", "failed_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    failed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Session(Base):
    """A logged-in browser or app. `merchant_id` is set when SSO scoped it to one, with
    the merchant's `return_url` (its "back to" link)."""

    __tablename__ = "sessions"
    __table_args__ = (Index("ix_sessions_email_created_at", "email", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    merchant_id: Mapped[str | None] = mapped_column(String(64))
    return_url: Mapped[str | None] = mapped_column(Text)
    token_hash: Mapped[str] = mapped_column(String(HASH_LENGTH), unique=True)
    user_agent: Mapped[str | None] = mapped_column(Text)
    client_address: Mapped[str | None] = mapped_column(String(ADDRESS_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SsoTicket(Base):
    """A merchant's one-time way in for one buyer: redeemed once, within seconds."""

    __tablename__ = "sso_tickets"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    ticket_hash: Mapped[str] = mapped_column(String(HASH_LENGTH), unique=True)
    merchant_id: Mapped[str] = mapped_column(String(64))
    email: Mapped[str] = mapped_column(String(254))
    return_url: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    consumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ApiKey(Base):
    """A merchant's API key, found by its public prefix and checked against its hash."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    key_hash: Mapped[str] = mapped_column(String(HASH_LENGTH))
    merchant_id: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


outbox = outbox_table(Base.metadata)
