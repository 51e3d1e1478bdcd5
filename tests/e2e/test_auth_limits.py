"""A second whole system, as deployed behind a reverse proxy (TRUSTED_PROXIES is this
host) with the default login limits and a clock the tests move: forwarded addresses,
rate limits, and the expiry of links and SSO tickets to the second."""
import os
from datetime import timedelta

import pytest
import requests

from services.common import clock
from services.common.clock import write_clock_file
from support.login_flow import (
    ask_expecting_no_email, ask_for_link, auth_rows, code_from, create_api_key, link_from,
)
from support.portal_client import TIMEOUT, assert_json_error, token_from
from support.system import RunningSystem

WINDOW = 900
TTL = 600


class MovableClock:
    """The time of the system under test. It only moves forward: a login request made
    "in the future" would count in every rate-limit window before it."""

    def __init__(self, path):
        self.path = path
        self.offset = timedelta(0)
        write_clock_file(path, offset_seconds=0)

    def now(self):
        return clock.now() + self.offset

    def new_window(self):
        """Skip past every login request made so far."""
        self._resume_from(self.now())

    def freeze(self, moment):
        write_clock_file(self.path, frozen_at=moment)

    def _resume_from(self, moment):
        self.offset = moment - clock.now() + timedelta(seconds=WINDOW + 1)
        write_clock_file(self.path, offset_seconds=self.offset.total_seconds())

    def frozen_run(self):
        """A moment a day ahead to freeze at; afterwards the clock resumes past it."""
        return _FrozenRun(self)


class _FrozenRun:
    def __init__(self, movable):
        self.movable = movable
        self.start = movable.now() + timedelta(days=1)
        self.latest = self.start

    def at(self, seconds):
        self.latest = self.start + timedelta(seconds=seconds)
        self.movable.freeze(self.latest)

    def __enter__(self):
        self.at(0)
        return self

    def __exit__(self, *exc):
        self.movable._resume_from(self.latest)


@pytest.fixture(scope="module")
def proxied(tmp_path_factory):
    folder = tmp_path_factory.mktemp("proxied-system")
    moving = MovableClock(folder / "clock.json")
    running = RunningSystem(
        folder, database_backend=os.environ.get("PORTAL_TEST_DATABASE", "sqlite"),
        extra_env={
            "TRUSTED_PROXIES": "127.0.0.1, ::1",
            "CLOCK_FILE": str(moving.path),
            "LOGIN_RATE_LIMIT_PER_EMAIL": "5",
            "LOGIN_RATE_LIMIT_PER_ADDRESS": "30",
        },
    )
    try:
        running.start()
        yield running, moving
    finally:
        running.stop()


def forwarded(address):
    return {"X-Forwarded-For": address}


def test_behind_a_trusted_proxy_the_forwarded_address_is_the_clients(proxied):
    system, moving = proxied
    moving.new_window()
    browser = requests.Session()
    headers = forwarded("6.6.6.6, 203.0.113.50")  # the client wrote the first entry, the proxy the last

    message = ask_for_link(system, browser, "ana@example.com", headers=headers)
    browser.post(f"{system.gateway_url}/api/v1/auth/sessions", json={"token": token_from(message, system)},
                 headers=headers, timeout=TIMEOUT)

    [current] = [s for s in browser.get(f"{system.gateway_url}/api/v1/me/sessions", timeout=TIMEOUT).json()["sessions"]
                 if s["current"]]
    assert current["address"] == "203.0.113.50"
    addresses = {row["client_address"] for row in auth_rows(system, "login_requests")}
    assert "203.0.113.50" in addresses and "6.6.6.6" not in addresses


def test_the_sixth_request_for_one_email_sends_nothing(proxied):
    system, moving = proxied
    moving.new_window()
    rows_before = len([row for row in auth_rows(system, "login_requests") if row["email"] == "bruno@example.com"])

    for attempt in range(5):
        ask_for_link(system, requests.Session(), "bruno@example.com", headers=forwarded(f"198.51.100.{attempt}"))
    ask_expecting_no_email(system, "bruno@example.com", headers=forwarded("198.51.100.99"))

    rows_after = [row for row in auth_rows(system, "login_requests") if row["email"] == "bruno@example.com"]
    assert len(rows_after) == rows_before + 5


def test_the_31st_request_from_one_address_sends_nothing(proxied):
    system, moving = proxied
    moving.new_window()
    for number in range(30):
        answer = requests.post(f"{system.gateway_url}/api/v1/auth/login-links",
                               json={"email": f"visitor{number}@example.com"},
                               headers=forwarded("198.51.100.130"), timeout=TIMEOUT)
        assert answer.status_code == 202

    ask_expecting_no_email(system, "ana@example.com", headers=forwarded("198.51.100.130"))

    # The limit is the address's: Ana from elsewhere gets her e-mail.
    ask_for_link(system, requests.Session(), "ana@example.com", headers=forwarded("198.51.100.131"))


def test_ten_wrong_codes_typed_alone_refuse_that_form_for_24_hours_while_the_link_works(proxied):
    system, moving = proxied
    with moving.frozen_run() as run:
        # A guesser asks for Bruno's login in its own browser, twice, and types wrong codes.
        for _ in range(2):
            guesser = requests.Session()
            wrong = f"{(int(code_from(ask_for_link(system, guesser, 'bruno@example.com'))) + 1) % 10 ** 6:06d}"
            for _ in range(5):
                answer = guesser.post(f"{system.gateway_url}/api/v1/auth/sessions", json={"code": wrong},
                                      timeout=TIMEOUT)
                assert_json_error(answer, 401, "invalid_code")

        # Now the code alone is refused even in Bruno's own browser, on the API and the page...
        browser = requests.Session()
        message = ask_for_link(system, browser, "bruno@example.com")
        refused = browser.post(f"{system.gateway_url}/api/v1/auth/sessions", json={"code": code_from(message)},
                               timeout=TIMEOUT)
        assert_json_error(refused, 429, "code_login_locked")
        page = browser.post(f"{system.gateway_url}/entrar/codigo", data={"code": code_from(message)}, timeout=TIMEOUT)
        assert page.status_code == 429 and "use o link que enviamos no e-mail" in page.text
        # ...while his link works in that browser, and with the code on another device.
        entered = browser.post(f"{system.gateway_url}/entrar/confirmar", data={"token": token_from(message, system)},
                               timeout=TIMEOUT)
        assert entered.url == f"{system.gateway_url}/pedidos"
        message = ask_for_link(system, requests.Session(), "bruno@example.com")
        phone = requests.post(f"{system.gateway_url}/api/v1/auth/sessions",
                              json={"token": token_from(message, system), "code": code_from(message)}, timeout=TIMEOUT)
        assert phone.status_code == 201, phone.text

        # A day after the wrong codes the code alone works again.
        run.at(24 * 3600)
        browser = requests.Session()
        message = ask_for_link(system, browser, "bruno@example.com")
        typed = browser.post(f"{system.gateway_url}/entrar/codigo", data={"code": code_from(message)}, timeout=TIMEOUT)
        assert typed.url == f"{system.gateway_url}/pedidos"


def test_a_link_works_just_before_ten_minutes_and_is_refused_like_any_bad_link_after(proxied):
    system, moving = proxied
    with moving.frozen_run() as run:
        ana_browser, bruno_browser = requests.Session(), requests.Session()
        ana_message = ask_for_link(system, ana_browser, "ana@example.com")
        bruno_message = ask_for_link(system, bruno_browser, "bruno@example.com")

        run.at(TTL - 1)
        in_time = ana_browser.post(f"{system.gateway_url}/entrar/confirmar",
                                   data={"token": token_from(ana_message, system)}, timeout=TIMEOUT)
        assert in_time.url == f"{system.gateway_url}/pedidos"

        run.at(TTL)
        late = bruno_browser.post(f"{system.gateway_url}/api/v1/auth/sessions",
                                  json={"token": token_from(bruno_message, system)}, timeout=TIMEOUT)
        unknown = bruno_browser.post(f"{system.gateway_url}/api/v1/auth/sessions", json={"token": "x" * 43},
                                     timeout=TIMEOUT)
        assert_json_error(late, 401, "invalid_login_link")
        assert late.json() == unknown.json()
        late_page = bruno_browser.get(link_from(bruno_message, system), timeout=TIMEOUT)
        assert late_page.status_code == 401 and "Enviar um novo link" in late_page.text


def test_an_sso_ticket_works_for_sixty_seconds(proxied):
    system, moving = proxied
    key = create_api_key(system, "acme-cursos")
    with moving.frozen_run() as run:
        urls = [
            requests.post(f"{system.gateway_url}/api/v1/merchant/sso-tickets",
                          headers={"Authorization": f"Bearer {key}"},
                          json={"email": "ana@example.com", "return_url": "https://acme.example.com/"},
                          timeout=TIMEOUT).json()["url"]
            for _ in range(2)
        ]

        run.at(59)
        assert requests.get(urls[0], allow_redirects=False, timeout=TIMEOUT).status_code == 303
        run.at(60)
        expired = requests.get(urls[1], allow_redirects=False, timeout=TIMEOUT)
        assert expired.status_code == 401 and "Acesso expirado" in expired.text
