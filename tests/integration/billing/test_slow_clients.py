"""Billing's public HTTP (processor callbacks) against slow clients and hostile JSON:
callbacks that never finish their body hold no worker, so `/healthz` and whole
callbacks are still answered; a callback nested too deep is a 400, never a 500."""
import pytest
import requests

from services.billing import domain
from support.slow_http import ANSWER_TIMEOUT, requests_being_read, stalled_post
from support.waiting import wait_until

MAX_WORKERS = 4
CALLBACK = "/callbacks/sandbox"


@pytest.fixture
def billing_overrides():
    # The stalled requests stay stalled while the test looks.
    return {"max_workers": MAX_WORKERS, "HTTP_REQUEST_READ_SECONDS": 60}


def signed_post(billing, body):
    signature = domain.callback_signature(billing.config["PROCESSOR_WEBHOOK_SECRET"], body)
    return requests.post(billing.url(CALLBACK), data=body, timeout=ANSWER_TIMEOUT,
                         headers={"Content-Type": "application/json", "X-Signature": signature})


def test_stalled_callbacks_beyond_the_workers_leave_billing_answering(billing):
    host, port = billing.config["WEB_SERVER_ADDRESS"].split(":")
    stalled = [stalled_post((host, int(port)), CALLBACK) for _ in range(MAX_WORKERS + 2)]
    try:
        wait_until(lambda: requests_being_read(billing.container) == len(stalled),
                   message=lambda: f"{requests_being_read(billing.container)} stalled callbacks under way")

        assert requests.get(billing.url("/healthz"), timeout=ANSWER_TIMEOUT).status_code == 200
        unknown = signed_post(billing, b'{"idempotency_key": "nope"}')
        assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "not_found")
    finally:
        for connection in stalled:
            connection.close()


@pytest.mark.parametrize("body", [
    b"[" * 100000,  # deeper than the parser's own stack
    b'{"idempotency_key": ' + b"[" * 600 + b"]" * 600 + b"}",  # parses, but deeper than anything walks
])
def test_a_callback_nested_too_deep_is_a_400_naming_the_body(billing, body):
    answer = signed_post(billing, body)
    assert (answer.status_code, answer.json()["error"]["code"]) == (400, "invalid_json")
    assert list(answer.json()["error"]["fields"]) == ["_body"]
