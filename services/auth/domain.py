"""Rules of logging in: secrets, expiry and session timeouts.

Plain functions of their inputs (the time is always passed in), so every rule is
tested without a database or a broker. Only hashes of secrets are ever kept.
"""
import hashlib
import secrets
from datetime import timedelta

TOKEN_BYTES = 32
CODE_DIGITS = 6


def new_token():
    """A login-link or session token: 32 random bytes, URL-safe."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def new_code():
    """The 6-digit code that goes in the login e-mail beside the link."""
    return f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"


def hash_token(token):
    """SHA-256 hex of a token: what the database keeps and looks tokens up by."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def hash_code(code, request_id):
    # Salted with the request so equal codes of different requests hash differently
    # and a table of the million possible codes' hashes does not reverse them.
    return hashlib.sha256(f"{request_id}:{code}".encode("utf-8")).hexdigest()


def login_link(portal_base_url, token):
    """The link the buyer clicks; built from configuration, never from a request."""
    return f"{portal_base_url.rstrip('/')}/entrar?token={token}"


def login_request_expiry(issued_at, ttl_seconds):
    return issued_at + timedelta(seconds=ttl_seconds)


def login_request_usable(expires_at, consumed_at, now):
    """A login request works once, and only before it expires."""
    return consumed_at is None and now < expires_at


def session_expiry(started_at, absolute_seconds):
    """The moment a session ends however active the buyer is."""
    return started_at + timedelta(seconds=absolute_seconds)


def session_active(ended_at, expires_at, last_seen_at, now, idle_seconds):
    """Not logged out, before the absolute expiry, and used within the idle timeout."""
    return (
        ended_at is None
        and now < expires_at
        and now - last_seen_at < timedelta(seconds=idle_seconds)
    )
