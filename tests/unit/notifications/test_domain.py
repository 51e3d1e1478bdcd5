"""Rules of sending e-mail, as plain functions."""
from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from services.notifications import domain

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=timezone.utc)


def test_login_email_is_too_late_from_the_moment_its_link_expires():
    assert not domain.login_email_expired(NOW + timedelta(microseconds=1), NOW)
    assert domain.login_email_expired(NOW, NOW)
    assert domain.login_email_expired(NOW - timedelta(seconds=1), NOW)


def test_a_fresh_ten_minute_link_says_ten_minutes():
    assert domain.minutes_left(NOW + timedelta(seconds=600), NOW) == 10
    # auth stamped the expiry a moment before notifications looks at it
    assert domain.minutes_left(NOW + timedelta(seconds=599, milliseconds=950), NOW) == 10
    assert domain.minutes_left(NOW + timedelta(seconds=61), NOW) == 2
    assert domain.minutes_left(NOW + timedelta(seconds=1), NOW) == 1


@given(st.floats(min_value=0.001, max_value=7 * 86400))
def test_minutes_left_never_understates_by_a_minute(seconds):
    minutes = domain.minutes_left(NOW + timedelta(seconds=seconds), NOW)
    assert minutes >= 1
    assert (minutes - 1) * 60 < seconds <= minutes * 60 + 0.001


def test_error_text_hides_the_secrets_it_was_given():
    link = "https://portal.example.com/entrar?token=abcDEF123"
    error = OSError(f"550 rejected: message quoted {link} and 123456")

    text = domain.error_text(error, (link, "123456"))

    assert link not in text
    assert "123456" not in text
    assert text == "550 rejected: message quoted [redacted] and [redacted]"


def test_error_text_is_short_and_never_empty():
    assert len(domain.error_text(OSError("x" * 5000), ())) == domain.MAX_ERROR_LENGTH
    assert domain.error_text(TimeoutError(), ()) == "TimeoutError"
