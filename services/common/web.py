"""HTTP plumbing for the processes that speak HTTP (the gateway, billing's card form).

One table maps each typed error to its status; every error leaves as JSON
`{"error": {"code", "message", "fields"}}` (or the page the caller renders), never
as a traceback. Every response also carries the headers that keep the portal out
of frames and stop content sniffing.
"""
import json
import logging
from functools import partial

from eventlet.event import Event
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
from services.common.logs import WithoutUrlSecrets
from services.common.observability import (
    CORRELATION_KEY, HTTP_REQUESTS, new_correlation_id, valid_correlation_id,
)

log = logging.getLogger(__name__)
# nameko's web server logs every request line, and login links carry secrets in URLs.
logging.getLogger("nameko.web.server").addFilter(WithoutUrlSecrets())

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
    # Answers that set no policy of their own (JSON, unknown paths) may load nothing.
    "Content-Security-Policy": "default-src 'none'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'",
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


def http_status(error):
    """The status of a PortalError, by the one status table."""
    return next((code for cls, code in HTTP_STATUS.items() if isinstance(error, cls)), 400)


def error_response(error):
    """The JSON answer for any exception, by the one status table."""
    if isinstance(error, PortalError):
        return json_response({"error": error.to_dict()}, status=http_status(error))
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
    # A page that sets its own policy decides who may frame it (billing's card form
    # names the portal in frame-ancestors); X-Frame-Options: DENY would contradict it.
    if any(name.lower() == "content-security-policy" and "frame-ancestors" in value for name, value in headers):
        present.add("x-frame-options")
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

    def context_data_from_headers(self, request):
        # The caller's request id when it sends a usable one, else a new one; nameko
        # then forwards it on every RPC and event this request causes.
        return {CORRELATION_KEY: valid_correlation_id(request.headers.get("X-Request-Id")) or new_correlation_id()}


class PortalHttp(HttpRequestHandler):
    """nameko's `http` entrypoint answering every error through `error_response`."""

    server = PortalWebServer()

    def __init__(self, method, url, expected_exceptions=PortalError, **kwargs):
        # Refusals are answers, not faults: nameko logs them without alarm.
        super().__init__(method, url, expected_exceptions=expected_exceptions, **kwargs)

    def handle_request(self, request):
        request.shallow = False
        context_data = self.server.context_data_from_headers(request)
        try:
            args, kwargs = self.get_entrypoint_parameters(request)
            self.check_signature(args, kwargs)
            finished = Event()
            self.container.spawn_worker(
                self, args, kwargs, context_data=context_data,
                handle_result=partial(self.handle_result, finished),
            )
            response = self.response_from_result(finished.wait())
        except Exception as exc:
            response = self.response_from_exception(exc)
        response.headers["X-Request-Id"] = context_data[CORRELATION_KEY]
        HTTP_REQUESTS.labels(self.container.service_name, self.method_name, str(response.status_code)).inc()
        return response

    def response_from_exception(self, exc):
        return error_response(exc)


http = PortalHttp.decorator
