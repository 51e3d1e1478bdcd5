"""Mercado Pago's notification signature: its manifest, the timestamp in
milliseconds within a tolerance, and nothing else accepted."""
import hashlib
import hmac
from datetime import datetime, timedelta, timezone

import pytest

from services.billing.domain import mercadopago_signature_is_valid

SECRET = "account-secret"
NOW = datetime(2026, 12, 7, 10, 0, tzinfo=timezone.utc)
TS = str(int(NOW.timestamp() * 1000))
TOLERANCE = 600


def signed(manifest, secret=SECRET):
    return hmac.new(secret.encode(), manifest.encode(), hashlib.sha256).hexdigest()


def header(ts=TS, data_id="123456", request_id="req-1", secret=SECRET):
    return f"ts={ts},v1={signed(f'id:{data_id};request-id:{request_id};ts:{ts};', secret)}"


def valid(x_signature, data_id="123456", request_id="req-1", now=NOW, secret=SECRET):
    return mercadopago_signature_is_valid(secret, x_signature, request_id, data_id, now, TOLERANCE)


def test_the_documented_manifest_signed_with_the_accounts_secret_is_valid():
    assert valid(header())
    assert valid(f" ts={TS} , v1={signed(f'id:123456;request-id:req-1;ts:{TS};').upper()} ")


def test_an_alphanumeric_id_is_signed_lowercased_and_missing_parts_are_left_out():
    assert valid(header(data_id="abc123"), data_id="ABC123")
    assert valid(f"ts={TS},v1={signed(f'id:123456;ts:{TS};')}", request_id=None)


@pytest.mark.parametrize("x_signature, data_id, request_id, secret", [
    (header(secret="another"), "123456", "req-1", SECRET),
    (header(), "654321", "req-1", SECRET),
    (header(), "123456", "req-2", SECRET),
    (header(), "123456", "req-1", ""),
    (None, "123456", "req-1", SECRET),
    (f"ts={TS}", "123456", "req-1", SECRET),
    (f"v1={signed('id:123456;request-id:req-1;ts:;')}", "123456", "req-1", SECRET),
    (header(ts="12ab"), "123456", "req-1", SECRET),
])
def test_anything_else_is_refused(x_signature, data_id, request_id, secret):
    assert not valid(x_signature, data_id, request_id, secret=secret)


def test_ts_is_read_in_milliseconds_within_the_tolerance():
    assert valid(header(), now=NOW + timedelta(seconds=TOLERANCE))
    assert valid(header(), now=NOW - timedelta(seconds=TOLERANCE))
    assert not valid(header(), now=NOW + timedelta(seconds=TOLERANCE + 1))
    # The same instant in seconds is 56 years off when read in milliseconds.
    assert not valid(header(ts=str(int(NOW.timestamp()))))
