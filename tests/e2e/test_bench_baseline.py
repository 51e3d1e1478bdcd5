"""The page benchmark's baseline (bench/baseline.py) serves the gateway's own views
in one process: for the same session it answers exactly what the gateway answers."""
import requests

from bench.pages import start_baseline
from support.portal_client import TIMEOUT, log_in
from support.ports import free_port


def test_the_benchmark_baseline_answers_what_the_gateway_answers(system):
    _, _, started = log_in(system, "ana@example.com")
    headers = {"Authorization": f"Bearer {started.json()['session_token']}"}

    def get(base_url, path):
        return requests.get(f"{base_url}{path}", headers=headers, timeout=TIMEOUT)

    [subscription, *_] = get(system.gateway_url, "/api/v1/me/subscriptions").json()["subscriptions"]
    port = free_port()
    baseline = start_baseline(system.env, port)
    try:
        for path in ("/api/v1/me/orders", f"/api/v1/me/subscriptions/{subscription['id']}"):
            through_the_bus, in_one_process = get(system.gateway_url, path), get(f"http://127.0.0.1:{port}", path)
            assert through_the_bus.status_code == 200, through_the_bus.text
            assert (in_one_process.status_code, in_one_process.json()) == (200, through_the_bus.json())
        assert through_the_bus.json()["invoices"], "the subscription compared has invoices"
    finally:
        baseline.kill()
        baseline.wait()
