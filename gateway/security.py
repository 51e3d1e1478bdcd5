"""The headers every gateway route answers with: a Content-Security-Policy with a fresh
nonce per response (the only inline code a page may have is what carries it), HSTS
when the portal is served over https; `services.common.web` adds nosniff,
Referrer-Policy and X-Frame-Options to every response, routes or not."""
import secrets

from gateway.cookies import is_https
from services.common.urls import origin_of

HSTS = "max-age=31536000; includeSubDomains"


def new_nonce():
    return secrets.token_urlsafe(18)


def content_security_policy(nonce, billing_public_url):
    """Everything from the portal itself; frames only from billing's card form; the
    portal itself framed by nobody."""
    return "; ".join((
        "default-src 'self'",
        f"script-src 'nonce-{nonce}'",
        f"style-src 'self' 'nonce-{nonce}'",
        "img-src 'self' data:",
        "form-action 'self'",
        f"frame-src {origin_of(billing_public_url)}",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    ))


def headers(nonce, config):
    answer = {
        "Content-Security-Policy": content_security_policy(nonce, config["BILLING_PUBLIC_URL"]),
        # For browsers that predate frame-ancestors.
        "X-Frame-Options": "DENY",
    }
    if is_https(config["PORTAL_BASE_URL"]):
        answer["Strict-Transport-Security"] = HSTS
    return answer
