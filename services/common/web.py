"""HTTP plumbing for the processes that speak HTTP (the gateway, billing's card form).

One table maps each typed error to its status; every error leaves as JSON
`{"error": {"code", "message", "fields"}}` (or the page the caller renders), never
as a traceback. Every response also carries the headers that keep the portal out
of frames and stop content sniffing.

Each request is read whole (request line, headers, body) in its connection's own
green thread within one deadline before any route sees it, so a slow or oversized
request never holds a worker or an in-flight slot.
"""
import io
import json
import logging
import time
from contextlib import suppress
from dataclasses import dataclass
from functools import partial

import eventlet
from eventlet import wsgi
from eventlet.event import Event
from eventlet.greenio import shutdown_safe
from eventlet.wsgi import MAX_HEADER_LINE, STATE_IDLE, ChunkReadError
from nameko.exceptions import BadRequest, RemoteError
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import HttpOnlyProtocol, WebServer, WsgiApp
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
server_log = logging.getLogger("nameko.web.server")
server_log.addFilter(WithoutUrlSecrets())

# Probes answer whatever else the process is serving: they take no in-flight slot.
PROBE_PATHS = frozenset({"/healthz", "/readyz"})
# No body the portal takes nests deeper than a few levels; deeper ones are refused
# before any code walks them (walking code recurses, and Python's stack is finite).
MAX_JSON_DEPTH = 32


# Refusals of the HTTP layer itself, before any route: they never cross RPC.
class BodyTooLarge(PortalError):
    code = "body_too_large"


class RequestTooSlow(PortalError):
    code = "request_timeout"


HTTP_STATUS = {
    ValidationFailed: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    RuleRefused: 422,
    TooManyRequests: 429,
    ServiceUnavailable: 503,
    BodyTooLarge: 413,
    RequestTooSlow: 408,
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
    except (ValueError, RecursionError):
        raise ValidationFailed("The body is not valid JSON.", code="invalid_json", fields={"_body": ["Invalid JSON."]}) from None
    if not isinstance(payload, dict):
        raise ValidationFailed("The body must be a JSON object.", code="invalid_json", fields={"_body": ["Expected an object."]})
    if _nests_deeper(payload, MAX_JSON_DEPTH):
        raise ValidationFailed(
            f"The body nests more than {MAX_JSON_DEPTH} levels deep.", code="invalid_json",
            fields={"_body": [f"Nested more than {MAX_JSON_DEPTH} levels deep."]},
        )
    return payload


def _nests_deeper(value, levels):
    """Whether `value` has objects or arrays nested more than `levels` deep (looked at
    level by level, without recursion)."""
    level = [value]
    for _ in range(levels):
        level = [
            item for container in level if isinstance(container, (dict, list))
            for item in (container.values() if isinstance(container, dict) else container)
        ]
    return any(isinstance(item, (dict, list)) for item in level)


def _secured_headers(headers, closing):
    """`headers` with the security headers it does not set itself, and with
    `Connection: close` when `closing`."""
    present = {name.lower() for name, _ in headers}
    if closing:
        headers = [(name, value) for name, value in headers if name.lower() != "connection"]
        headers.append(("Connection", "close"))
    # A page that sets its own policy decides who may frame it (billing's card form
    # names the portal in frame-ancestors); X-Frame-Options: DENY would contradict it.
    if any(name.lower() == "content-security-policy" and "frame-ancestors" in value for name, value in headers):
        present.add("x-frame-options")
    return list(headers) + [
        (name, value) for name, value in SECURITY_HEADERS.items() if name.lower() not in present
    ]


def _with_security_headers(start_response, server, status, headers, exc_info=None):
    # A stopping process answers on no connection again.
    return start_response(status, _secured_headers(headers, closing=server.draining), exc_info)


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
            response = self.server.answer_within_bound(provider, request)
        return response(environ, partial(_with_security_headers, start_response, self.server))


@dataclass(frozen=True)
class RequestLimits:
    """How long one request may take to arrive whole, and how large its body may be."""

    read_seconds: float
    max_body_bytes: int


class _FramingLines:
    """A request's reader whose lines (a chunked body's sizes and trailers) end within
    eventlet's bound on a header line, instead of growing while the client sends."""

    def __init__(self, rfile):
        self._rfile = rfile
        self.read = rfile.read

    def readline(self, size=-1):
        line = self._rfile.readline(MAX_HEADER_LINE)
        if len(line) == MAX_HEADER_LINE and not line.endswith(b"\n"):
            raise ChunkReadError("chunk line too long")
        return line


class _WholeRequestProtocol(HttpOnlyProtocol):
    """eventlet's HTTP/1.1 protocol, reading each request whole before the app sees it.

    The request line, headers and body (chunked too, decoded) are read in the
    connection's green thread within one deadline counted from the request's first
    byte, and at most `max_body_bytes` of body: a body announced larger is refused
    without reading it, a chunked one as soon as it grows past the bound. A request
    cut by either is answered (408, 413) and its connection closed. Between requests
    a keep-alive connection waits under the server's socket timeout, not the deadline.
    """

    def __init__(self, conn_state, server, limits):
        self.limits = limits  # eventlet serves the whole connection from __init__
        super().__init__(conn_state, server)

    def handle_one_request(self):
        self._deadline = None
        try:
            super().handle_one_request()
        except eventlet.Timeout as timeout:
            if timeout is not self._deadline:
                raise
            self._refuse(RequestTooSlow(
                f"The request did not arrive whole within {self.limits.read_seconds:g}s.",
                fields={"_body": ["Sent too slowly."]},
            ))
        finally:
            if self._deadline is not None:
                self._deadline.cancel()

    def _read_request_line(self):
        if not self.rfile.closed:
            with suppress(ConnectionError):  # eventlet's own read below tells what happened
                self.rfile.peek(1)  # idle until the first byte (the socket timeout bounds it)
        self._deadline = eventlet.Timeout(self.limits.read_seconds)
        return super()._read_request_line()

    def handle_one_response(self):
        try:
            body = self._whole_body(self.environ["eventlet.input"])
        except (BodyTooLarge, ValidationFailed) as refusal:
            self._refuse(refusal)
            return
        finally:
            self._deadline.cancel()
        if body is None:  # the client left before sending all of it
            self.close_connection = 1
            return
        # The route reads the body from memory; a chunked one comes to it decoded, as
        # a body of known length (werkzeug reads none from a stream without one).
        self.environ["wsgi.input"] = io.BytesIO(body)
        self.environ["CONTENT_LENGTH"] = str(len(body))
        self.environ.pop("HTTP_TRANSFER_ENCODING", None)
        super().handle_one_response()

    def _whole_body(self, request_input):
        """The body, or None when the connection ended before all of it came."""
        bound = self.limits.max_body_bytes
        too_large = BodyTooLarge(
            f"The body is larger than {bound} bytes.", fields={"_body": [f"Larger than {bound} bytes."]})
        if not request_input.chunked_input and request_input.content_length > bound:
            raise too_large
        request_input.rfile = _FramingLines(request_input.rfile)
        try:
            body = request_input.read(bound + 1)
        except ChunkReadError:
            raise ValidationFailed(
                "The chunked body is malformed.", code="bad_request", fields={"_body": ["Malformed chunks."]},
            ) from None
        except OSError:
            return None
        if len(body) > bound:
            raise too_large
        if not request_input.chunked_input and len(body) < request_input.content_length:
            return None
        return body

    def _refuse(self, error):
        """Answer `error` and close the connection: the rest of the request stays unread.
        The answer's writing is bounded by the socket timeout, not by the deadline."""
        self._deadline.cancel()
        self.close_connection = 1
        response = error_response(error)
        headers = _secured_headers(response.headers.to_wsgi_list(), closing=True)
        head = "".join(f"{name}: {value}\r\n" for name, value in headers)
        with suppress(OSError):
            self.wfile.write(f"HTTP/1.1 {response.status}\r\n{head}\r\n".encode("latin-1") + response.get_data())
            self.wfile.flush()
        server_log.info("answered %s to %s: %s", response.status_code, self.client_address[0], error)


class PortalWebServer(WebServer):
    """nameko's web server, draining on stop instead of dropping what it serves.

    nameko stops accepting only after every worker has finished, keeps its listening
    socket open until the process exits (connections waiting there are then reset),
    and kills the connections it is still answering. Here, as soon as the service
    stops, the socket is closed, so new connections go to the other processes sharing
    the port (SO_REUSEPORT); requests under way, and those already sent on open
    connections, are answered with `Connection: close`; idle connections are closed
    after a moment in which their clients may still send one.

    Each request is read whole before it is served (`_WholeRequestProtocol`), and a
    connection silent for `HTTP_IDLE_SECONDS` (between requests, or not reading its
    answer) is closed.
    """

    IDLE_GRACE_SECONDS = 0.5

    def __init__(self):
        super().__init__()
        self.draining = False
        self._connections = {}
        self._drained = None
        self._in_flight = 0
        self._max_in_flight = None
        self._limits = None
        self._idle_seconds = None

    def setup(self):
        super().setup()
        config = self.container.config
        self._max_in_flight = int(config.get("HTTP_MAX_REQUESTS_IN_FLIGHT", 100))
        self._limits = RequestLimits(
            read_seconds=float(config.get("HTTP_REQUEST_READ_SECONDS", 10)),
            max_body_bytes=int(config.get("HTTP_MAX_BODY_BYTES", 1048576)),
        )
        self._idle_seconds = float(config.get("HTTP_IDLE_SECONDS", 75))

    def get_wsgi_server(self, sock, wsgi_app, protocol=None, debug=False):
        return wsgi.Server(
            sock, sock.getsockname(), wsgi_app, log=server_log, debug=debug,
            protocol=partial(_WholeRequestProtocol, limits=self._limits), socket_timeout=self._idle_seconds,
        )

    def answer_within_bound(self, provider, request):
        """The provider's answer, or at once a 503 to retry when the process already
        has `HTTP_MAX_REQUESTS_IN_FLIGHT` requests under way: beyond what its workers
        can serve, each waiting request only holds memory and adds to every wait.
        Probes are answered whatever is in flight."""
        if request.path in PROBE_PATHS:
            return provider.handle_request(request)
        if self._in_flight >= self._max_in_flight:
            response = error_response(ServiceUnavailable(
                "Muitas requisições ao mesmo tempo; tente novamente em instantes.", code="overloaded"))
            response.headers["Retry-After"] = "1"
            return response
        self._in_flight += 1
        try:
            return provider.handle_request(request)
        finally:
            self._in_flight -= 1

    def get_wsgi_app(self):
        return _PortalWsgiApp(self)

    def process_request(self, sock, address):
        connection = [address, sock, STATE_IDLE]  # eventlet keeps its state in [2]
        self._connections[id(connection)] = connection
        try:
            self._serv.process_request(connection)
        except OSError as error:
            # A client gone very early, as nameko's own server tolerates (eventlet#353).
            if "raw readinto() returned invalid length" not in str(error):
                raise
        finally:
            self._connections.pop(id(connection), None)

    def unregister_provider(self, provider):
        # The first route to stop drains the server; the others wait for it.
        if self._drained is None:
            self._drained = Event()
            self._drain()
            self._drained.send(None)
        self._drained.wait()
        super().unregister_provider(provider)

    def _drain(self):
        self.draining = True
        self._is_accepting = False
        if self._gt is not None:
            self._gt.kill()
        if self._sock is not None:
            self._accept_waiting()
            self._sock.close()
        started = time.monotonic()
        # As long as a caller may wait for the slowest answer (two RPC deadlines).
        limit = 2 * float(self.container.config.get("RPC_TIMEOUT", 5)) + 1
        while self._connections and time.monotonic() - started < limit:
            if time.monotonic() - started >= self.IDLE_GRACE_SECONDS:
                for address, sock, state in list(self._connections.values()):
                    if state == STATE_IDLE:
                        shutdown_safe(sock)
            eventlet.sleep(0.05)

    def _accept_waiting(self):
        """Take the connections the kernel already queued here, so they are answered."""
        self._sock.setblocking(False)
        while True:
            try:
                sock, address = self._sock.accept()
            except OSError:  # none left (EAGAIN)
                return
            sock.setblocking(True)
            sock.settimeout(self._serv.socket_timeout)
            self.container.spawn_managed_thread(partial(self.process_request, sock, address))

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
