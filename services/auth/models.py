"""auth's own tables. Secrets are kept only as SHA-256 hex digests."""
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
    """One login e-mail: its link token and 6-digit code, usable once before expiry."""

    __tablename__ = "login_requests"
    __table_args__ = (Index("ix_login_requests_email_created_at", "email", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    token_hash: Mapped[str] = mapped_column(String(HASH_LENGTH), unique=True)
    code_hash: Mapped[str] = mapped_column(String(HASH_LENGTH))
    client_address: Mapped[str | None] = mapped_column(String(ADDRESS_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    consumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failed_code_attempts: Mapped[int] = mapped_column(Integer, default=0)


class Session(Base):
    """A logged-in browser or app. `merchant_id` is set when SSO scoped it to one."""

    __tablename__ = "sessions"
    __table_args__ = (Index("ix_sessions_email_created_at", "email", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    merchant_id: Mapped[str | None] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(HASH_LENGTH), unique=True)
    user_agent: Mapped[str | None] = mapped_column(Text)
    client_address: Mapped[str | None] = mapped_column(String(ADDRESS_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


outbox = outbox_table(Base.metadata)
