"""The portal's cookies — the session, and the login nonce that binds a login request
to the browser that made it: where they live, with which flags, how requests carry them."""
from urllib.parse import urlparse

SESSION_COOKIE = "portal_session"
LOGIN_NONCE_COOKIE = "login_nonce"
# Where a buyer sent to log in was going, so the login ends there.
RETURN_PATH_COOKIE = "return_to"
RETURN_PATH_MAX_AGE = 3600


def is_https(base_url):
    return urlparse(base_url).scheme == "https"


def cookie_name(base_url, name):
    # The __Host- prefix makes browsers refuse the cookie unless it is Secure, host-only
    # and Path=/, so a sibling subdomain cannot plant or override it.
    return f"__Host-{name}" if is_https(base_url) else name


def session_cookie_name(base_url):
    return cookie_name(base_url, SESSION_COOKIE)


def _set(response, base_url, name, value, max_age):
    response.set_cookie(
        cookie_name(base_url, name), value, max_age=max_age, path="/",
        secure=is_https(base_url), httponly=True, samesite="Lax",
    )


def _clear(response, base_url, name):
    response.delete_cookie(
        cookie_name(base_url, name), path="/", secure=is_https(base_url), httponly=True, samesite="Lax",
    )


def set_session_cookie(response, base_url, token, max_age):
    _set(response, base_url, SESSION_COOKIE, token, max_age)


def clear_session_cookie(response, base_url):
    _clear(response, base_url, SESSION_COOKIE)


def set_login_nonce_cookie(response, base_url, nonce, max_age):
    _set(response, base_url, LOGIN_NONCE_COOKIE, nonce, max_age)


def clear_login_nonce_cookie(response, base_url):
    _clear(response, base_url, LOGIN_NONCE_COOKIE)


def set_return_path_cookie(response, base_url, path):
    _set(response, base_url, RETURN_PATH_COOKIE, path, RETURN_PATH_MAX_AGE)


def clear_return_path_cookie(response, base_url):
    _clear(response, base_url, RETURN_PATH_COOKIE)


def return_path_from(request, base_url):
    """The portal path the cookie names; anything else (another site, `//host`) is None."""
    path = request.cookies.get(cookie_name(base_url, RETURN_PATH_COOKIE), "")
    if path.startswith("/") and not path.startswith("//") and "\\" not in path:
        return path
    return None


def login_nonce_from(request, base_url):
    return request.cookies.get(cookie_name(base_url, LOGIN_NONCE_COOKIE))


def session_cookie_from(request, base_url):
    """The session token the browser sent in its cookie (what CSRF protects)."""
    return request.cookies.get(session_cookie_name(base_url))


def bearer_token_from(request):
    """The credential of `Authorization: Bearer` (an app's session, a merchant's key)."""
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return None


def session_token_from(request, base_url):
    """The session token from `Authorization: Bearer` (apps) or the cookie (browsers)."""
    return bearer_token_from(request) or session_cookie_from(request, base_url)
