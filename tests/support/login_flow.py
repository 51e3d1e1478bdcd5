"""The login flows of a running portal as its end-to-end tests drive them: ask for a link,
read the e-mail that arrives, use it; a merchant's API key from `portalctl`."""
import os
import re
import subprocess
import sys
import time

import requests

from services.common.config import REPO_ROOT
from support.auth_testing import rows
from support.portal_client import TIMEOUT, inbox_ids, login_email


def ask_for_link(system, client, address, headers=None):
    """`client` (a requests.Session, the asking browser) asks for a link; the e-mail."""
    before = inbox_ids(system, address)
    answer = client.post(
        f"{system.gateway_url}/api/v1/auth/login-links", json={"email": address}, headers=headers, timeout=TIMEOUT,
    )
    assert answer.status_code == 202, answer.text
    return login_email(system, address, before)


def ask_expecting_no_email(system, address, headers=None, wait=2):
    """Ask for a link for `address` and see the same answer arrive, but no e-mail."""
    before = inbox_ids(system, address)
    answer = requests.post(
        f"{system.gateway_url}/api/v1/auth/login-links", json={"email": address}, headers=headers, timeout=TIMEOUT,
    )
    assert answer.status_code == 202, answer.text
    time.sleep(wait)
    assert inbox_ids(system, address) == before, f"an e-mail reached {address}"


def link_from(message, system):
    return next(link for link in message["links"] if link.startswith(system.gateway_url))


def code_from(message):
    return re.search(r"código na página de acesso: (\d{6})", message["text"]).group(1)


def auth_rows(system, table):
    return rows(system.database_urls["auth"], table)


def portalctl(system, *args):
    """`portalctl <args>` against this system's bus: (exit code, output)."""
    finished = subprocess.run(
        [sys.executable, "-m", "portalctl.cli", *args], cwd=REPO_ROOT, capture_output=True, text=True,
        timeout=60, env={**os.environ, "AMQP_URI": system.amqp_uri},
    )
    return finished.returncode, finished.stdout + finished.stderr


def create_api_key(system, merchant):
    code, output = portalctl(system, "api-keys", "create", "--merchant", merchant)
    assert code == 0, output
    return re.search(r"^(pk_live_[0-9a-f]{12}_\S{43})$", output, re.MULTILINE).group(1)
