"""The session cookie: where it lives, with which flags, and how a request carries it."""
from urllib.parse import urlparse

SESSION_COOKIE = "portal_session"


def is_https(base_url):
    return urlparse(base_url).scheme == "https"


def session_cookie_name(base_url):
    # The __Host- prefix makes browsers refuse the cookie unless it is Secure, host-only
    # and Path=/, so a sibling subdomain cannot plant or override it.
    return f"__Host-{SESSION_COOKIE}" if is_https(base_url) else SESSION_COOKIE


def set_session_cookie(response, base_url, token, max_age):
    response.set_cookie(
        session_cookie_name(base_url), token, max_age=max_age, path="/",
        secure=is_https(base_url), httponly=True, samesite="Lax",
    )


def clear_session_cookie(response, base_url):
    response.delete_cookie(
        session_cookie_name(base_url), path="/", secure=is_https(base_url),
        httponly=True, samesite="Lax",
    )


def session_token_from(request, base_url):
    """The session token from `Authorization: Bearer` (apps) or the cookie (browsers)."""
    authorization = request.headers.get("Authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return request.cookies.get(session_cookie_name(base_url))
