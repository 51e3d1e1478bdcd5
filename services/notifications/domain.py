"""Rules of sending e-mail: when a login e-mail is too late, and what may be kept."""
import math

MAX_ERROR_LENGTH = 500
REDACTED = "[redacted]"


def login_email_expired(expires_at, now):
    """A login e-mail whose link has expired is not worth sending."""
    return now >= expires_at


def minutes_left(expires_at, now):
    """Whole minutes the buyer has, rounded up (a fresh 10-minute link says 10)."""
    return max(1, math.ceil((expires_at - now).total_seconds() / 60))


def error_text(error, secrets):
    """An error's text fit to store: short, and without any of `secrets` in it."""
    text = str(error) or type(error).__name__
    # A mail server may quote what it received; whatever it says stays unusable.
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text[:MAX_ERROR_LENGTH]
