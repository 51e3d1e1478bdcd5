"""Forged-request refusal, checked in one place for every route of the gateway.

`guard_routes(GatewayService)` wraps every HTTP route. Each request with a
state-changing method is checked before its route runs, so before any RPC:

- `Sec-Fetch-Site: cross-site`, or an `Origin` other than `PORTAL_BASE_URL`'s, is
  refused with 403 `cross_site_request`;
- a request carrying the session cookie must carry its CSRF token too (form field
  `csrf_token` or header `X-CSRF-Token`), else 403 `csrf_token_invalid`. A request
  authenticated by `Authorization: Bearer` has no ambient credential and is exempt.

The token needs no storage: it is an HMAC of the session token, so the gateway checks
it from the cookie alone. Safe methods are not checked; the one state-changing GET,
SSO redemption, is single-use, short-lived and issued server to server.

The same wrapper gives each request its CSP nonce (`request.csp_nonce`) and each
answer the security headers of `gateway.security`.
"""
import functools
import hashlib
import hmac
import inspect
from contextvars import ContextVar

from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR
from nameko.web.handlers import HttpRequestHandler
from werkzeug.wrappers import Response

from gateway import cookies, security
from services.common.errors import Forbidden
from services.common.urls import origin_of

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM_FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
CROSS_SITE = "Pedido recusado: ele veio de outro site."
TOKEN_INVALID = "Pedido recusado: esta página expirou. Recarregue-a e tente de novo."

_current_request = ContextVar("current_request", default=None)


def csrf_token(session_token):
    return hmac.new(session_token.encode(), b"csrf", hashlib.sha256).hexdigest()


def current_request():
    """The request the running route answers, or None outside a route. The page it
    renders reads from it what every page needs (`request.csrf_token` for its forms)."""
    return _current_request.get()


def forgery_refusal(request, base_url):
    """The 403 to answer a state-changing request with, or None when it may proceed."""
    origin = request.headers.get("Origin")
    fetch_site = request.headers.get("Sec-Fetch-Site", "").lower()
    if origin == "null" and fetch_site == "same-origin":
        # A form on a `Referrer-Policy: no-referrer` page (the login link's) is sent
        # with `Origin: null`; the browser's own Sec-Fetch-Site still vouches for it.
        origin = None
    if fetch_site == "cross-site" or (origin is not None and origin_of(origin) != origin_of(base_url)):
        return Forbidden(CROSS_SITE, code="cross_site_request")
    session_token = cookies.session_cookie_from(request, base_url)
    if session_token is None or cookies.bearer_token_from(request):
        return None
    sent = request.headers.get(HEADER) or request.form.get(FORM_FIELD) or ""
    if not hmac.compare_digest(sent.encode(), csrf_token(session_token).encode()):
        return Forbidden(TOKEN_INVALID, code="csrf_token_invalid")
    return None


def guard_routes(service_cls):
    """Class decorator: every HTTP route of `service_cls`, inherited ones included,
    runs behind the checks above when its method changes state."""
    for name, function in inspect.getmembers(service_cls, inspect.isfunction):
        verbs = {
            verb.strip().upper()
            for entrypoint in getattr(function, ENTRYPOINT_EXTENSIONS_ATTR, ())
            if isinstance(entrypoint, HttpRequestHandler)
            for verb in entrypoint.method.split(",")
        }
        if verbs and not getattr(function, "guarded", False):
            setattr(service_cls, name, _guarded(function, changes_state=bool(verbs - SAFE_METHODS)))
    return service_cls


def _guarded(route, changes_state):
    @functools.wraps(route)
    def guarded(self, request, **path_values):
        base_url = self.config["PORTAL_BASE_URL"]
        if changes_state:
            refusal = forgery_refusal(request, base_url)
            if refusal is not None:
                raise refusal
        session_token = cookies.session_cookie_from(request, base_url)
        request.csrf_token = csrf_token(session_token) if session_token else None
        request.csp_nonce = security.new_nonce()
        bound = _current_request.set(request)
        try:
            response = route(self, request, **path_values)
        finally:
            _current_request.reset(bound)
        if isinstance(response, Response):
            response.headers.update(security.headers(request.csp_nonce, self.config))
        return response

    guarded.guarded = True
    guarded.changes_state = changes_state
    return guarded
