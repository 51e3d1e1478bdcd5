"""A client of the running portal, as an outside caller uses it: HTTP and the mail sink."""
import time
from datetime import datetime
from urllib.parse import parse_qs, urlparse

import requests

TIMEOUT = 10


def login_email(system, address, after=0.0, wait=20):
    """The newest login e-mail to `address` that arrived after `after` (epoch seconds)."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        messages = requests.get(f"{system.mail_url}/api/messages", params={"to": address}, timeout=TIMEOUT).json()
        fresh = [m for m in messages if _epoch(m["date"]) >= after]
        if fresh:
            return fresh[0]
        time.sleep(0.2)
    raise AssertionError(f"no e-mail reached {address} in {wait}s")


def _epoch(iso):
    return datetime.fromisoformat(iso).timestamp()


def token_from(message, system):
    link = next(link for link in message["links"] if link.startswith(system.gateway_url))
    return parse_qs(urlparse(link).query)["token"][0]


def log_in(system, address):
    asked_at = time.time() - 1
    answer = requests.post(f"{system.gateway_url}/api/v1/auth/login-links", json={"email": address}, timeout=TIMEOUT)
    assert answer.status_code == 202
    token = token_from(login_email(system, address, after=asked_at), system)
    session = requests.Session()
    started = session.post(f"{system.gateway_url}/api/v1/auth/sessions", json={"token": token}, timeout=TIMEOUT)
    assert started.status_code == 201, started.text
    return session, token, started


def assert_json_error(answer, status, code=None):
    assert answer.status_code == status, answer.text
    assert answer.headers["Content-Type"].startswith("application/json")
    error = answer.json()["error"]
    assert set(error) == {"code", "message", "fields"}
    assert "Traceback" not in answer.text
    if code:
        assert error["code"] == code
    return error


def bearer_get(system, token):
    return requests.get(
        f"{system.gateway_url}/api/v1/me/orders", headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT,
    )
