"""Rules of logging in, as plain functions."""
import hashlib
import string
from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from services.auth import domain

ISSUED_AT = datetime(2026, 3, 14, 15, 9, 26, tzinfo=timezone.utc)
TTL = 600
IDLE = 1800
ABSOLUTE = 43200
moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(timezone.utc),
)


class TestSecrets:
    def test_token_is_43_url_safe_characters_from_32_random_bytes(self):
        token = domain.new_token()
        assert len(token) == 43
        assert set(token) <= set(string.ascii_letters + string.digits + "-_")
        assert domain.new_token() != token

    def test_code_is_six_digits(self):
        codes = {domain.new_code() for _ in range(200)}
        assert all(len(code) == 6 and code.isdigit() for code in codes)
        assert len(codes) > 150

    @given(st.text(min_size=1))
    def test_token_hash_is_sha256_hex_and_never_the_token(self, token):
        hashed = domain.hash_token(token)
        assert hashed == hashlib.sha256(token.encode()).hexdigest()
        assert hashed != token

    def test_code_hash_depends_on_the_request(self):
        first = domain.hash_code("123456", "request-1")
        assert first != domain.hash_code("123456", "request-2")
        assert first != domain.hash_token("123456")
        assert "123456" not in first


class TestLoginLink:
    def test_built_from_the_configured_base_url(self):
        assert domain.login_link("https://portal.example.com/", "abc_-1") == (
            "https://portal.example.com/entrar?token=abc_-1"
        )

    @given(moments, st.integers(min_value=1, max_value=86400))
    def test_usable_until_exactly_the_ttl(self, issued_at, ttl):
        expires_at = domain.login_request_expiry(issued_at, ttl)
        just_before = expires_at - timedelta(microseconds=1)
        assert domain.login_request_usable(expires_at, None, issued_at)
        assert domain.login_request_usable(expires_at, None, just_before)
        assert not domain.login_request_usable(expires_at, None, expires_at)
        assert not domain.login_request_usable(expires_at, None, expires_at + timedelta(seconds=1))

    def test_ten_minutes_by_default(self):
        expires_at = domain.login_request_expiry(ISSUED_AT, TTL)
        assert domain.login_request_usable(expires_at, None, ISSUED_AT + timedelta(seconds=599))
        assert not domain.login_request_usable(expires_at, None, ISSUED_AT + timedelta(seconds=601))

    def test_used_once_only(self):
        expires_at = domain.login_request_expiry(ISSUED_AT, TTL)
        assert not domain.login_request_usable(expires_at, ISSUED_AT, ISSUED_AT + timedelta(seconds=1))


class TestSessionTimeouts:
    def active(self, now, last_seen_at, ended_at=None):
        expires_at = domain.session_expiry(ISSUED_AT, ABSOLUTE)
        return domain.session_active(ended_at, expires_at, last_seen_at, now, IDLE)

    def test_active_while_used_within_the_idle_timeout(self):
        now = ISSUED_AT + timedelta(seconds=IDLE - 1)
        assert self.active(now, last_seen_at=ISSUED_AT)

    def test_idle_timeout(self):
        assert not self.active(ISSUED_AT + timedelta(seconds=IDLE), last_seen_at=ISSUED_AT)

    def test_activity_keeps_it_alive_until_the_absolute_timeout(self):
        end = ISSUED_AT + timedelta(seconds=ABSOLUTE)
        assert self.active(end - timedelta(microseconds=1), last_seen_at=end - timedelta(seconds=5))
        assert not self.active(end, last_seen_at=end - timedelta(seconds=5))

    def test_ended_session_is_not_active(self):
        now = ISSUED_AT + timedelta(seconds=10)
        assert not self.active(now, last_seen_at=now, ended_at=ISSUED_AT + timedelta(seconds=5))

    @given(
        st.integers(min_value=0, max_value=ABSOLUTE * 2),
        st.integers(min_value=0, max_value=ABSOLUTE * 2),
    )
    def test_active_exactly_when_neither_timeout_passed(self, seen_after, now_after):
        last_seen_at = ISSUED_AT + timedelta(seconds=seen_after)
        now = last_seen_at + timedelta(seconds=now_after)
        expected = now_after < IDLE and seen_after + now_after < ABSOLUTE
        assert self.active(now, last_seen_at) == expected

