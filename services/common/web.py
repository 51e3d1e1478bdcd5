"""HTTP plumbing for the processes that speak HTTP (the gateway, billing's card form).

One table maps each typed error to its status; every error leaves as JSON
`{"error": {"code", "message", "fields"}}` (or the page the caller renders), never
as a traceback. Every response also carries the headers that keep the portal out
of frames and stop content sniffing.
"""
import json
import logging
from functools import partial

from nameko.exceptions import BadRequest, RemoteError
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer, WsgiApp
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect
from werkzeug.wrappers import Request, Response

from services.common.errors import (
    Conflict, Forbidden, NotFound, PortalError, RuleRefused, ServiceUnavailable,
    TooManyRequests, Unauthorized, ValidationFailed,
)

log = logging.getLogger(__name__)

HTTP_STATUS = {
    ValidationFailed: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    RuleRefused: 422,
    TooManyRequests: 429,
    ServiceUnavailable: 503,
}

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "Referrer-Policy": "same-origin",
}

INTERNAL_ERROR = {
    "code": "internal_error",
    "message": "Algo deu errado do nosso lado. Tente novamente em instantes.",
    "fields": {},
}


def json_response(payload, status=200, headers=None):
    return Response(
        json.dumps(payload, ensure_ascii=False), status=status, headers=headers,
        mimetype="application/json",
    )


def error_response(error):
    """The JSON answer for any exception, by the one status table."""
    if isinstance(error, PortalError):
        status = next(
            (code for cls, code in HTTP_STATUS.items() if isinstance(error, cls)), 400
        )
        return json_response({"error": error.to_dict()}, status=status)
    if isinstance(error, BadRequest):
        body = {"code": "bad_request", "message": "Requisição inválida.", "fields": {}}
        return json_response({"error": body}, status=400)
    if isinstance(error, HTTPException):
        body = {"code": error.name.lower().replace(" ", "_"), "message": error.description, "fields": {}}
        return json_response({"error": body}, status=error.code)
    if isinstance(error, RemoteError):
        log.error("a service failed: %s", error.exc_type)
    else:
        log.exception("unexpected error while answering", exc_info=error)
    return json_response({"error": INTERNAL_ERROR}, status=500)


def read_json(request):
    """The request body as a JSON object, or a 400 that says what is wrong."""
    if not request.get_data():
        raise ValidationFailed("A JSON body is required.", code="invalid_json", fields={"_body": ["Missing body."]})
    try:
        payload = json.loads(request.get_data(as_text=True))
    except ValueError:
        raise ValidationFailed("The body is not valid JSON.", code="invalid_json", fields={"_body": ["Invalid JSON."]}) from None
    if not isinstance(payload, dict):
        raise ValidationFailed("The body must be a JSON object.", code="invalid_json", fields={"_body": ["Expected an object."]})
    return payload


def _with_security_headers(start_response, status, headers, exc_info=None):
    present = {name.lower() for name, _ in headers}
    headers = list(headers) + [
        (name, value) for name, value in SECURITY_HEADERS.items() if name.lower() not in present
    ]
    return start_response(status, headers, exc_info)


class _PortalWsgiApp(WsgiApp):
    """nameko's WSGI app, answering unknown paths and methods in JSON, with security headers."""

    def __call__(self, environ, start_response):
        request = Request(environ, shallow=True)
        adapter = self.url_map.bind_to_environ(environ)
        try:
            provider, values = adapter.match()
        except RequestRedirect as redirect:
            response = redirect
        except HTTPException as exc:
            response = error_response(exc)
        else:
            request.path_values = values
            response = provider.handle_request(request)
        return response(environ, partial(_with_security_headers, start_response))


class PortalWebServer(WebServer):
    def get_wsgi_app(self):
        return _PortalWsgiApp(self)


class PortalHttp(HttpRequestHandler):
    """nameko's `http` entrypoint answering every error through `error_response`."""

    server = PortalWebServer()

    def __init__(self, method, url, expected_exceptions=PortalError, **kwargs):
        # Refusals are answers, not faults: nameko logs them without alarm.
        super().__init__(method, url, expected_exceptions=expected_exceptions, **kwargs)

    def response_from_exception(self, exc):
        return error_response(exc)


http = PortalHttp.decorator
