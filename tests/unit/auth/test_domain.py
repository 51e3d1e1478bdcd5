"""Rules of logging in, as plain functions."""
import hashlib
import re
import string
from datetime import datetime, timedelta, timezone

import pytest
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

    def test_use_is_written_down_at_most_once_per_hundredth_of_the_idle_timeout(self):
        resolution = timedelta(seconds=IDLE / 100)
        assert not domain.activity_worth_recording(ISSUED_AT, ISSUED_AT + resolution - timedelta(microseconds=1), IDLE)
        assert domain.activity_worth_recording(ISSUED_AT, ISSUED_AT + resolution, IDLE)
        # So a session in use never lives past its idle timeout counted from a real use.
        assert not self.active(ISSUED_AT + resolution + timedelta(seconds=IDLE), last_seen_at=ISSUED_AT + resolution)

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



class TestCodesAndSecrets:
    def test_a_code_matches_only_its_own_request(self):
        stored = domain.hash_code("123456", "request-1")
        assert domain.code_matches("123456", "request-1", stored)
        assert not domain.code_matches("123457", "request-1", stored)
        assert not domain.code_matches("123456", "request-2", stored)

    @given(st.text(min_size=1), st.text(min_size=1))
    def test_a_secret_matches_exactly_its_hash(self, secret, other):
        stored = domain.hash_token(secret)
        assert domain.secret_matches(secret, stored)
        assert domain.secret_matches(other, stored) == (other == secret)


class TestLandingAndLimits:
    @pytest.mark.parametrize("email, shown", [
        ("ana@example.com", "a•••@example.com"),
        ("b@loja.com.br", "b•••@loja.com.br"),
    ])
    def test_the_landing_shows_a_masked_email(self, email, shown):
        assert domain.masked_email(email) == shown

    @given(st.integers(min_value=0, max_value=100), st.integers(min_value=0, max_value=100),
           st.integers(min_value=1, max_value=50), st.integers(min_value=1, max_value=50))
    def test_a_request_is_allowed_while_both_counts_are_under_their_limits(
        self, for_email, from_address, per_email, per_address,
    ):
        allowed = domain.login_request_allowed(for_email, from_address, per_email, per_address)
        assert allowed == (for_email < per_email and from_address < per_address)

    def test_the_sixth_request_of_an_email_is_over_the_default_limit(self):
        assert domain.login_request_allowed(4, 0, 5, 30)
        assert not domain.login_request_allowed(5, 0, 5, 30)
        assert not domain.login_request_allowed(0, 30, 5, 30)

    def test_the_window_ends_now(self):
        assert domain.rate_window_start(ISSUED_AT, 900) == ISSUED_AT - timedelta(minutes=15)

    @given(st.integers(min_value=0, max_value=100), st.integers(min_value=1, max_value=50))
    def test_the_code_alone_is_allowed_while_the_wrong_ones_are_under_the_cap(self, failures, per_day):
        assert domain.code_alone_allowed(failures, per_day) == (failures < per_day)

    def test_the_eleventh_try_of_the_code_alone_is_refused_by_the_default_cap(self):
        assert domain.code_alone_allowed(9, 10)
        assert not domain.code_alone_allowed(10, 10)

    @given(moments)
    def test_wrong_codes_count_for_the_24_hours_before_now(self, now):
        assert domain.code_failure_window_start(now) == now - timedelta(hours=24)


class TestDevices:
    @pytest.mark.parametrize("user_agent, label", [
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/130.0 Safari/537.36", "Chrome no Windows"),
        ("Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 Chrome/130.0 Safari/537.36 Edg/130.0", "Edge no Windows"),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 Version/18.0 "
         "Mobile/15E148 Safari/604.1", "Safari no iPhone"),
        ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/130.0 Mobile Safari/537.36",
         "Chrome no Android"),
        ("Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0", "Firefox no Linux"),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/17.5 Safari/605.1.15",
         "Safari no Mac"),
        ("curl/8.5.0", "Dispositivo desconhecido"),
        (None, "Dispositivo desconhecido"),
    ])
    def test_a_device_is_named_from_its_user_agent(self, user_agent, label):
        assert domain.device_label(user_agent) == label


class TestApiKeys:
    def test_a_key_carries_its_public_prefix_and_a_random_secret(self):
        prefix, key = domain.new_api_key()
        assert re.fullmatch(r"[0-9a-f]{12}", prefix)
        assert key.startswith(f"pk_live_{prefix}_") and len(key) == len(f"pk_live_{prefix}_") + 43
        assert domain.api_key_prefix(key) == prefix
        assert domain.new_api_key()[1] != key

    @pytest.mark.parametrize("text", [
        "", "pk_live_", "pk_test_0123456789ab_" + "a" * 43, "pk_live_0123456789AB_" + "a" * 43,
        "pk_live_0123456789ab_" + "a" * 42, "pk_live_0123456789ab_" + "a" * 43 + "\n",
    ])
    def test_anything_else_has_no_prefix(self, text):
        assert domain.api_key_prefix(text) is None


class TestSso:
    def test_the_link_is_built_from_the_configured_base_url(self):
        assert domain.sso_link("https://portal.example.com/", "t1") == "https://portal.example.com/sso/t1"

    @pytest.mark.parametrize("return_url, allowed", [
        ("https://acme.example.com/conta", True),
        ("https://ACME.example.com:443/conta?x=1", True),
        ("http://acme.example.com/conta", False),
        ("https://acme.example.com:8443/conta", False),
        ("https://acme.example.com.evil.example/", False),
        ("https://acme.example.com@evil.example/", False),
        ("https://evil.example/?next=https://acme.example.com", False),
        ("javascript:alert(1)", False),
        ("//acme.example.com/conta", False),
    ])
    def test_a_return_url_must_be_on_an_allowed_origin(self, return_url, allowed):
        assert domain.return_url_allowed(return_url, ["https://acme.example.com/"]) is allowed

    def test_a_merchant_without_origins_allows_none(self):
        assert not domain.return_url_allowed("https://acme.example.com/", [])
