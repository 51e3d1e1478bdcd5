"""The headers of every gateway route: a CSP with a fresh nonce, HSTS over https only."""
from gateway import security
from gateway.pages import text_color_on

CONFIG = {"PORTAL_BASE_URL": "http://localhost:8000", "BILLING_PUBLIC_URL": "http://localhost:8001/"}


def directives(policy):
    return {part.split()[0]: part.split()[1:] for part in policy.split("; ")}


def test_the_policy_allows_only_the_portal_its_nonce_and_billing_s_frame():
    policy = directives(security.headers("abc123", CONFIG)["Content-Security-Policy"])
    assert policy["script-src"] == ["'nonce-abc123'"]
    assert policy["style-src"] == ["'self'", "'nonce-abc123'"]
    assert policy["frame-src"] == ["http://localhost:8001"]
    assert policy["frame-ancestors"] == policy["object-src"] == policy["base-uri"] == ["'none'"]
    assert policy["default-src"] == ["'self'"] and policy["form-action"] == ["'self'"]


def test_hsts_only_when_the_portal_is_https():
    assert "Strict-Transport-Security" not in security.headers("n", CONFIG)
    https = {"PORTAL_BASE_URL": "https://portal.example.com", "BILLING_PUBLIC_URL": "https://pay.example.com"}
    assert security.headers("n", https)["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


def test_every_nonce_is_new():
    assert len({security.new_nonce() for _ in range(100)}) == 100


def test_the_merchant_band_reads_in_black_or_white_whichever_contrasts_more():
    assert text_color_on("#E4572E") == "#000000"  # Acme's orange: 6.3:1 in black, 3.3:1 in white
    assert text_color_on("#1A237E") == "#ffffff"
    assert text_color_on("#FFFFFF") == "#000000"
