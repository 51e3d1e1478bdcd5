"""A correlation id follows a request through HTTP and RPC, and workers are measured."""
import time

import requests
from prometheus_client import REGISTRY

from services.common.observability import current_correlation_id
from services.common.rpc import TimedRpc, rpc
from services.common.web import http, json_response
from support.ports import free_port

CONTAINER = "services.common.observability.ObservedContainer"


class Inner:
    name = "inner"

    @rpc
    def whoami(self):
        return current_correlation_id.get()


class Outer:
    name = "outer"
    inner = TimedRpc("inner")

    @http("GET", "/trace")
    def trace(self, request):
        return json_response({"outer": current_correlation_id.get(), "inner": self.inner.whoami()})


def test_the_request_id_reaches_every_service_and_comes_back(container_factory, rabbit_config):
    port = free_port()
    config = {**rabbit_config, "SERVICE_CONTAINER_CLS": CONTAINER, "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}"}
    for service in (Inner, Outer):
        container_factory(service, config).start()

    given = requests.get(f"http://127.0.0.1:{port}/trace", headers={"X-Request-Id": "req-1234abcd"}, timeout=10)
    assert given.json() == {"outer": "req-1234abcd", "inner": "req-1234abcd"}
    assert given.headers["X-Request-Id"] == "req-1234abcd"

    # No usable id from the caller: a fresh one, still the same everywhere.
    made_up = requests.get(f"http://127.0.0.1:{port}/trace", headers={"X-Request-Id": "bad id;drop"}, timeout=10)
    body = made_up.json()
    assert body["outer"] == body["inner"] == made_up.headers["X-Request-Id"] != "bad id;drop"

    # A worker is measured after it has answered: give the second one a moment.
    deadline = time.monotonic() + 5
    while True:
        served = REGISTRY.get_sample_value(
            "portal_worker_seconds_count", {"service": "inner", "entrypoint": "whoami", "outcome": "ok"})
        if served >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    waited = REGISTRY.get_sample_value(
        "portal_rpc_call_seconds_count", {"target": "inner", "method": "whoami", "outcome": "ok"})
    answered = REGISTRY.get_sample_value(
        "portal_http_requests_total", {"service": "outer", "entrypoint": "trace", "status": "200"})
    assert served >= 2 and waited >= 2 and answered >= 2
