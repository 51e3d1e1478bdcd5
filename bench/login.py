"""Login: from the request for a link to the e-mail stored in the SMTP sink."""
import json
import os
import time
from pathlib import Path

import eventlet
import requests

POLL_SECONDS = 0.005


def _stored(mail_dir):
    return {entry.name for entry in os.scandir(mail_dir) if entry.name.endswith(".eml")}


def wait_for_email(mail_dir, before, address, timeout):
    """The moment (perf_counter) a new .eml to `address` appears in the sink's folder."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        for name in _stored(mail_dir) - before:
            if address in Path(mail_dir, name).read_text(errors="replace"):
                return time.perf_counter()
        eventlet.sleep(POLL_SECONDS)
    raise TimeoutError(f"no e-mail reached {address} within {timeout}s")


def measure(gateway_url, mail_dir, address, count, pause, timeout=10):
    """`count` logins one after another: (durations in seconds, failures)."""
    durations, failures = [], []
    body = json.dumps({"email": address})
    for _ in range(count):
        before = _stored(mail_dir)
        started = time.perf_counter()
        try:
            answer = requests.post(f"{gateway_url}/api/v1/auth/login-links", data=body, timeout=timeout,
                                   headers={"Content-Type": "application/json"})
            if answer.status_code != 202:
                raise RuntimeError(f"login-links answered {answer.status_code}: {answer.text[:200]}")
            durations.append(wait_for_email(mail_dir, before, address, timeout) - started)
        except (RuntimeError, TimeoutError, requests.RequestException) as error:
            failures.append(repr(error))
        eventlet.sleep(pause)
    return durations, failures
