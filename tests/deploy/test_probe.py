"""services/common/probe.py as the kubelet runs it: a separate process reading this
network namespace's TCP table. The test process plays the service holding (or not) a
connection to a stand-in broker on a port of its own."""
import http.server
import os
import socket
import subprocess
import sys
import threading

import pytest


def run_probe(*args, amqp_uri):
    finished = subprocess.run(
        [sys.executable, "-m", "services.common.probe", *args],
        env={**os.environ, "AMQP_URI": amqp_uri}, capture_output=True, text=True, timeout=30,
    )
    return finished.returncode, finished.stdout + finished.stderr


@pytest.fixture
def broker():
    """A listening socket standing in for RabbitMQ; its AMQP URI."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    yield listener, f"amqp://guest:guest@127.0.0.1:{listener.getsockname()[1]}/"
    listener.close()


def unused_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_ready_while_this_namespace_holds_a_broker_connection(broker):
    listener, uri = broker
    link = socket.create_connection(listener.getsockname())
    accepted, _ = listener.accept()
    assert run_probe("ready", amqp_uri=uri)[0] == 0
    link.close()
    accepted.close()
    status, message = run_probe("ready", amqp_uri=uri)
    assert status == 1
    assert "no connection to the broker" in message


def test_alive_fails_only_when_the_broker_answers_and_there_is_no_link(broker):
    listener, uri = broker
    status, message = run_probe("alive", amqp_uri=uri)
    assert status == 1 and "not connected" in message
    link = socket.create_connection(listener.getsockname())
    try:
        assert run_probe("alive", amqp_uri=uri)[0] == 0
    finally:
        link.close()
    # The broker is down: a restart would not help, so the process stays alive.
    status, message = run_probe("alive", amqp_uri=f"amqp://guest:guest@127.0.0.1:{unused_port()}/")
    assert status == 0 and "down" in message


def test_a_connection_to_another_port_is_not_the_broker_link(broker):
    listener, _ = broker
    link = socket.create_connection(listener.getsockname())
    try:
        assert run_probe("ready", amqp_uri=f"amqp://guest:guest@127.0.0.1:{unused_port()}/")[0] == 1
    finally:
        link.close()


class Answer(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/healthz" else 503)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_http_passes_on_2xx_only():
    server = http.server.HTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        assert run_probe("http", f"{base}/healthz", amqp_uri="")[0] == 0
        assert run_probe("http", f"{base}/readyz", amqp_uri="") == (1, f"{base}/readyz answered 503\n")
    finally:
        server.shutdown()
    assert run_probe("http", f"http://127.0.0.1:{unused_port()}/healthz", amqp_uri="")[0] == 1


@pytest.mark.parametrize("args", [(), ("readiness",), ("http",), ("ready", "extra")])
def test_a_wrong_call_is_a_usage_error(args):
    status, message = run_probe(*args, amqp_uri="amqp://localhost/")
    assert status == 2 and message.startswith("usage:")
