"""Rules of logging in: secrets, expiry, limits, session timeouts, SSO and API keys.

Plain functions of their inputs (the time is always passed in), so every rule is
tested without a database or a broker. Only hashes of secrets are ever kept.
"""
import hashlib
import hmac
import re
import secrets
from datetime import timedelta

from services.common.urls import origin_of

TOKEN_BYTES = 32
CODE_DIGITS = 6
# Wrong codes a login request survives; the next try finds it dead.
MAX_CODE_ATTEMPTS = 5
# The daily cap on an e-mail's wrong codes typed without the link counts those of the
# last 24 hours (rolling, so no burst across midnight doubles it).
CODE_FAILURE_WINDOW = timedelta(days=1)
API_KEY_PREFIX_BYTES = 6
API_KEY = re.compile(r"pk_live_(?P<prefix>[0-9a-f]{12})_[A-Za-z0-9_-]{43}")


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


def secret_matches(secret, stored_hash):
    """Whether `secret` hashes to `stored_hash`, compared in constant time."""
    return hmac.compare_digest(hash_token(secret), stored_hash)


def code_matches(code, request_id, stored_hash):
    return hmac.compare_digest(hash_code(code, request_id), stored_hash)


def login_link(portal_base_url, token):
    """The link the buyer clicks; built from configuration, never from a request."""
    return f"{portal_base_url.rstrip('/')}/entrar?token={token}"


def login_request_expiry(issued_at, ttl_seconds):
    return issued_at + timedelta(seconds=ttl_seconds)


def login_request_usable(expires_at, consumed_at, now):
    """A login request works once, and only before it expires."""
    return consumed_at is None and now < expires_at


def masked_email(email):
    """What the link's page shows of the address it logs in: `a•••@example.com`."""
    local, _, domain = email.rpartition("@")
    return f"{local[:1]}•••@{domain}"


def rate_window_start(now, window_seconds):
    return now - timedelta(seconds=window_seconds)


def login_request_allowed(recent_for_email, recent_from_address, per_email, per_address):
    """Whether one more login e-mail fits the limits, given the requests of the window."""
    return recent_for_email < per_email and recent_from_address < per_address


def code_failure_window_start(now):
    return now - CODE_FAILURE_WINDOW


def code_alone_allowed(recent_failures, failures_per_day):
    """Whether the code may still be tried without the link for an e-mail, given its
    wrong codes so typed in the window.

    Only that form is capped: it redeems a request the guesser may have asked for in
    its own browser, so its tries are counted per e-mail across all requests. The link,
    alone or with the code, proves the e-mail was read, so it is never capped and
    nobody can lock a buyer out."""
    return recent_failures < failures_per_day


def session_expiry(started_at, absolute_seconds):
    """The moment a session ends however active the buyer is."""
    return started_at + timedelta(seconds=absolute_seconds)


# A session's use is written down at most once per this fraction of the idle timeout
# (18 s of 30 min): a buyer clicking through pages costs no write per page, and a
# session still never outlives its idle timeout; it may end up to that much earlier.
ACTIVITY_RESOLUTION = 1 / 100


def activity_worth_recording(last_seen_at, now, idle_seconds):
    """Whether a use of the session at `now` should move its `last_seen_at`."""
    return now - last_seen_at >= timedelta(seconds=idle_seconds * ACTIVITY_RESOLUTION)


def session_active(ended_at, expires_at, last_seen_at, now, idle_seconds):
    """Not logged out, before the absolute expiry, and used within the idle timeout."""
    return (
        ended_at is None
        and now < expires_at
        and now - last_seen_at < timedelta(seconds=idle_seconds)
    )


def device_label(user_agent):
    """A short name for the device behind a User-Agent, as the list of sessions shows it."""
    user_agent = user_agent or ""
    browser = next((name for marker, name in _BROWSERS if marker in user_agent), None)
    system = next((name for marker, name in _SYSTEMS if marker in user_agent), None)
    if browser and system:
        return f"{browser} no {system}"
    return browser or system or "Dispositivo desconhecido"


# Order matters: Edge and Opera also say "Chrome", Chrome also says "Safari", and
# iPhones and Android phones also say "Mac OS X" and "Linux".
_BROWSERS = (
    ("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
)
_SYSTEMS = (
    ("iPhone", "iPhone"), ("iPad", "iPad"), ("Android", "Android"), ("Windows", "Windows"),
    ("Mac OS X", "Mac"), ("CrOS", "Chromebook"), ("Linux", "Linux"),
)


def new_api_key():
    """(public prefix, whole key): `pk_live_<prefix>_<secret>`, shown to the merchant once."""
    prefix = secrets.token_hex(API_KEY_PREFIX_BYTES)
    return prefix, f"pk_live_{prefix}_{new_token()}"


def api_key_prefix(key):
    """The public prefix a key is looked up by, or None when it is not a key's shape."""
    match = API_KEY.fullmatch(key)
    return match.group("prefix") if match else None


def sso_link(portal_base_url, ticket):
    return f"{portal_base_url.rstrip('/')}/sso/{ticket}"


def return_url_allowed(return_url, allowed_origins):
    """A merchant's way back must lead to one of the origins it registered."""
    origin = origin_of(return_url)
    return origin is not None and origin in {origin_of(allowed) for allowed in allowed_origins}
