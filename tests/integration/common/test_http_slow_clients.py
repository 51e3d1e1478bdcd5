"""Slow, partial and oversized requests against the real gateway (the web plumbing of
services/common/web.py): each request is read whole in its connection's own green
thread within HTTP_REQUEST_READ_SECONDS and HTTP_MAX_BODY_BYTES before any route
sees it, so such a request holds no worker and no in-flight slot, and is cut (408,
413) instead of waiting forever; an idle connection is closed after
HTTP_IDLE_SECONDS. Hostile JSON is a 400, never a 500."""
import json
import socket
from http.client import HTTPResponse
from types import SimpleNamespace

import eventlet
import pytest
import requests

from gateway.service import GatewayService
from services.common.config import load_config
from support.slow_http import ANSWER_TIMEOUT, connection_to, requests_being_read, send_head, stalled_post
from support.ports import free_port
from support.waiting import wait_until

MAX_WORKERS = 4
LOGIN_LINKS = "/api/v1/auth/login-links"


@pytest.fixture
def start_gateway(container_factory, rabbit_config):
    """`start_gateway(**config)`: the gateway on a free port, with MAX_WORKERS workers."""

    def start(**overrides):
        port = free_port()
        config = {
            **load_config(), "AMQP_URI": rabbit_config["AMQP_URI"], "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}",
            "max_workers": MAX_WORKERS, **overrides,
        }
        container = container_factory(GatewayService, config)
        container.start()
        return SimpleNamespace(container=container, address=("127.0.0.1", port), url=f"http://127.0.0.1:{port}")

    return start


def error_of(response):
    return response.status, json.loads(response.read())["error"]


def test_stalled_bodies_beyond_the_workers_and_slots_leave_the_gateway_answering(start_gateway):
    # As many slots as workers; the stalled requests stay stalled while the test looks.
    gateway = start_gateway(HTTP_MAX_REQUESTS_IN_FLIGHT=MAX_WORKERS, HTTP_REQUEST_READ_SECONDS=60)
    stalled = [stalled_post(gateway.address, LOGIN_LINKS) for _ in range(MAX_WORKERS + 2)]
    try:
        wait_until(lambda: requests_being_read(gateway.container) == len(stalled),
                   message=lambda: f"{requests_being_read(gateway.container)} stalled requests under way")

        assert requests.get(f"{gateway.url}/healthz", timeout=ANSWER_TIMEOUT).status_code == 200
        assert requests.get(f"{gateway.url}/api/v1/openapi.json", timeout=ANSWER_TIMEOUT).status_code == 200
        # A whole POST is read and reaches its route.
        refused = requests.post(f"{gateway.url}{LOGIN_LINKS}", json={"email": "not an address"}, timeout=ANSWER_TIMEOUT)
        assert (refused.status_code, list(refused.json()["error"]["fields"])) == (400, ["email"])
    finally:
        for connection in stalled:
            connection.close()


def test_a_stalled_body_is_cut_by_the_deadline_counted_from_the_request_not_the_idle_wait(start_gateway):
    read_seconds = 0.5
    gateway = start_gateway(HTTP_REQUEST_READ_SECONDS=read_seconds)
    connection = connection_to(gateway.address)
    connection.request("GET", "/healthz")
    assert connection.getresponse().read()
    first_socket = connection.sock

    eventlet.sleep(3 * read_seconds)  # idle between requests: governed by HTTP_IDLE_SECONDS
    connection.request("GET", "/healthz")
    second = connection.getresponse()
    assert (second.status, second.read(), connection.sock) == (200, b'{"status": "ok"}', first_socket)

    send_head(connection, LOGIN_LINKS, ("Content-Length", "1000"), b"{")
    answer = connection.getresponse()
    status, error = error_of(answer)
    assert (status, error["code"], list(error["fields"])) == (408, "request_timeout", ["_body"])
    assert answer.getheader("Connection") == "close"
    assert answer.getheader("X-Content-Type-Options") == "nosniff"
    connection.close()


def test_a_slowloris_header_sender_is_cut_by_the_deadline(start_gateway):
    gateway = start_gateway(HTTP_REQUEST_READ_SECONDS=0.5)
    sock = socket.create_connection(gateway.address, timeout=ANSWER_TIMEOUT)
    sock.sendall(f"POST {LOGIN_LINKS} HTTP/1.1\r\nHost: localhost\r\nX-Slow: ".encode())

    def dribble():
        """One more byte of the header every 50 ms while the connection lasts (at most 20 s)."""
        for _ in range(400):
            try:
                sock.sendall(b"a")
            except OSError:
                return
            eventlet.sleep(0.05)

    sender = eventlet.spawn(dribble)
    answer = HTTPResponse(sock)
    answer.begin()
    sender.kill()
    status, error = error_of(answer)
    assert (status, error["code"]) == (408, "request_timeout")
    sock.close()


def test_a_body_announced_too_large_is_refused_without_reading_it(start_gateway):
    gateway = start_gateway(HTTP_MAX_BODY_BYTES=1000)
    connection = connection_to(gateway.address)
    send_head(connection, LOGIN_LINKS, ("Content-Length", str(200 * 1024 * 1024)))  # and not one byte of it

    answer = connection.getresponse()
    status, error = error_of(answer)
    assert (status, error["code"], list(error["fields"])) == (413, "body_too_large", ["_body"])
    assert answer.getheader("Connection") == "close"
    connection.close()


def test_a_chunked_body_too_large_or_malformed_is_refused_and_else_taken_whole(start_gateway):
    gateway = start_gateway(HTTP_MAX_BODY_BYTES=1000)
    connection = connection_to(gateway.address)
    send_head(connection, LOGIN_LINKS, ("Transfer-Encoding", "chunked"))
    chunk = b" " * 800
    connection.send(b"%x\r\n%s\r\n" % (len(chunk), chunk) * 2)  # and the stream goes on, unfinished

    status, error = error_of(connection.getresponse())
    assert (status, error["code"], list(error["fields"])) == (413, "body_too_large", ["_body"])
    connection.close()

    malformed = connection_to(gateway.address)
    send_head(malformed, LOGIN_LINKS, ("Transfer-Encoding", "chunked"), b"not-hex\r\n{}\r\n0\r\n\r\n")
    status, error = error_of(malformed.getresponse())
    assert (status, error["code"], list(error["fields"])) == (400, "bad_request", ["_body"])
    malformed.close()

    # Within the bound, the chunks reach the route as one body.
    body = b'{"email": "not an address"}'
    pieces = [body[:10], body[10:]]
    refused = requests.post(f"{gateway.url}{LOGIN_LINKS}", data=iter(pieces), timeout=ANSWER_TIMEOUT,
                            headers={"Content-Type": "application/json"})
    assert (refused.status_code, list(refused.json()["error"]["fields"])) == (400, ["email"])


def test_a_connection_silent_past_the_idle_timeout_is_closed(start_gateway):
    gateway = start_gateway(HTTP_IDLE_SECONDS=0.5)
    connection = connection_to(gateway.address)
    connection.connect()
    assert connection.sock.recv(1) == b""
    connection.close()


@pytest.mark.parametrize("body", [
    "[" * 100000,  # deeper than the parser's own stack
    '{"email": ' + "[" * 600 + "]" * 600 + "}",  # parses, but deeper than anything walks
])
def test_json_nested_too_deep_is_a_400_naming_the_body(start_gateway, body):
    gateway = start_gateway()
    answer = requests.post(f"{gateway.url}{LOGIN_LINKS}", data=body, timeout=ANSWER_TIMEOUT,
                           headers={"Content-Type": "application/json"})
    assert (answer.status_code, answer.json()["error"]["code"]) == (400, "invalid_json")
    assert list(answer.json()["error"]["fields"]) == ["_body"]
