"""Clients that send a request only in part, and what the web server under test is
doing with its connections."""
from http.client import HTTPConnection

from eventlet.wsgi import STATE_REQUEST

from services.common.web import PortalHttp

# A safety bound on every wait for an answer: reaching it fails the test.
ANSWER_TIMEOUT = 20


def connection_to(address):
    """An HTTP/1.1 keep-alive connection (http.client) to the server at `address`."""
    host, port = address
    return HTTPConnection(host, port, timeout=ANSWER_TIMEOUT)


def send_head(connection, path, framing, body_start=None):
    """Send on `connection` a JSON POST's headers, with `framing` (`("Content-Length",
    "1000")` or `("Transfer-Encoding", "chunked")`), then `body_start`, and no more."""
    connection.putrequest("POST", path)
    connection.putheader("Content-Type", "application/json")
    connection.putheader(*framing)
    connection.endheaders(body_start)


def stalled_post(address, path):
    """A connection that sent a POST announcing a 1000-byte body, one byte of it, and
    nothing more."""
    connection = connection_to(address)
    send_head(connection, path, ("Content-Length", "1000"), b"{")
    return connection


def requests_being_read(container):
    """How many of the container's HTTP connections have a request under way (its
    request line in, the rest not yet answered)."""
    server = next(entrypoint.server for entrypoint in container.entrypoints if isinstance(entrypoint, PortalHttp))
    return sum(state == STATE_REQUEST for _, _, state in server._connections.values())
