"""A client of the running portal, as an outside caller uses it: HTTP and the mail sink."""
import time
from urllib.parse import parse_qs, urlparse

import requests

TIMEOUT = 10


def inbox_ids(system, address):
    """Ids of the e-mails to `address` in the sink now: take them before asking for one."""
    messages = requests.get(f"{system.mail_url}/api/messages", params={"to": address}, timeout=TIMEOUT).json()
    return {message["id"] for message in messages}


def login_email(system, address, before, wait=20):
    """The first e-mail to `address` whose id is not in `before`. (The portal answers
    before it sends, so "the newest e-mail" may still be an older one.)"""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        messages = requests.get(f"{system.mail_url}/api/messages", params={"to": address}, timeout=TIMEOUT).json()
        # Other e-mails (a payment confirmation, say) may arrive meanwhile: only a login link counts.
        fresh = [message for message in messages if message["id"] not in before and _has_login_link(message, system)]
        if fresh:
            return fresh[-1]
        time.sleep(0.2)
    raise AssertionError(f"no new e-mail reached {address} in {wait}s")


def _has_login_link(message, system):
    return any(link.startswith(system.gateway_url) and "token=" in link for link in message["links"])


def token_from(message, system):
    link = next(link for link in message["links"] if link.startswith(system.gateway_url) and "token=" in link)
    return parse_qs(urlparse(link).query)["token"][0]


def log_in(system, address):
    """A client logged in as `address` the way a browser is: the login request's nonce
    cookie, then the session cookie, and the CSRF token on every request after."""
    before = inbox_ids(system, address)
    session = requests.Session()
    answer = session.post(f"{system.gateway_url}/api/v1/auth/login-links", json={"email": address}, timeout=TIMEOUT)
    assert answer.status_code == 202
    token = token_from(login_email(system, address, before), system)
    started = session.post(f"{system.gateway_url}/api/v1/auth/sessions", json={"token": token}, timeout=TIMEOUT)
    assert started.status_code == 201, started.text
    session.headers["X-CSRF-Token"] = started.json()["csrf_token"]
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
