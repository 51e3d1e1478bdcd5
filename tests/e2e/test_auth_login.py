"""Logging in over HTTP against the whole system: no enumeration, links bound to the
browser that asked, scanners get nothing, fresh sessions with the right cookies, and
no login secret stored, logged or published anywhere."""
import re
import time

import requests

from support.bus_tap import BusTap, events
from support.databases import every_stored_value
from support.login_flow import ask_for_link, auth_rows, code_from, create_api_key, link_from
from support.portal_client import TIMEOUT, assert_json_error, inbox_ids, login_email, token_from
from support.system import BROKER

ANA = "ana@example.com"
BRUNO = "bruno@example.com"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1"


def sessions_of(system, email):
    return [row for row in auth_rows(system, "sessions") if row["email"] == email]


def csrf_field(page):
    return re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page.text).group(1)


def test_known_and_unknown_emails_get_the_same_answer(system):
    url = system.gateway_url
    answers = {
        email: requests.post(f"{url}/api/v1/auth/login-links", json={"email": email}, timeout=TIMEOUT)
        for email in (ANA, "nobody-here@example.com")
    }
    pages = {
        email: requests.post(f"{url}/entrar", data={"email": email}, timeout=TIMEOUT)
        for email in (ANA, "nobody-here@example.com")
    }

    for same in (list(answers.values()), list(pages.values())):
        known, unknown = same
        assert known.status_code == unknown.status_code
        assert known.content == unknown.content
        assert sorted(known.headers) == sorted(unknown.headers)
        assert "login_nonce=" in known.headers["Set-Cookie"] and "login_nonce=" in unknown.headers["Set-Cookie"]
    assert answers[ANA].status_code == 202 and pages[ANA].status_code == 200
    time.sleep(1)
    assert inbox_ids(system, "nobody-here@example.com") == set()


def test_a_link_scanner_gets_no_session_and_the_buyer_still_logs_in(system):
    browser = requests.Session()
    message = ask_for_link(system, browser, BRUNO)
    link = link_from(message, system)
    sessions_before = len(sessions_of(system, BRUNO))

    scanner = requests.Session()
    assert scanner.head(link, timeout=TIMEOUT).status_code == 200
    landing = scanner.get(link, timeout=TIMEOUT)
    assert landing.status_code == 200 and "Continuar como b•••@example.com" in landing.text
    assert 'name="code"' in landing.text  # not the asking browser: the code is asked for
    submitted = scanner.post(f"{system.gateway_url}/entrar/confirmar", data={"token": token_from(message, system)},
                             allow_redirects=False, timeout=TIMEOUT)
    assert submitted.status_code == 401 and 'name="code"' in submitted.text
    assert "portal_session" not in submitted.headers.get("Set-Cookie", "")
    assert len(sessions_of(system, BRUNO)) == sessions_before

    own_landing = browser.get(link, timeout=TIMEOUT)
    assert 'name="code"' not in own_landing.text
    assert own_landing.headers["Referrer-Policy"] == "no-referrer" and own_landing.headers["Cache-Control"] == "no-store"
    confirmed = browser.post(f"{system.gateway_url}/entrar/confirmar", data={"token": token_from(message, system)},
                             timeout=TIMEOUT)
    assert confirmed.status_code == 200 and confirmed.url == f"{system.gateway_url}/pedidos"
    assert "token" not in confirmed.url and "Pedidos" in confirmed.text
    assert len(sessions_of(system, BRUNO)) == sessions_before + 1


def test_a_buyer_reading_mail_on_another_device_logs_in_with_the_code(system):
    desktop = requests.Session()
    message = ask_for_link(system, desktop, BRUNO)
    phone = requests.Session()

    # On the phone: the link's page asks for the code, and a wrong one is refused.
    link = link_from(message, system)
    assert 'name="code"' in phone.get(link, timeout=TIMEOUT).text
    wrong = f"{(int(code_from(message)) + 1) % 10 ** 6:06d}"
    refused = phone.post(f"{system.gateway_url}/entrar/confirmar",
                         data={"token": token_from(message, system), "code": wrong}, timeout=TIMEOUT)
    assert refused.status_code == 401 and "Código incorreto" in refused.text
    accepted = phone.post(f"{system.gateway_url}/entrar/confirmar",
                          data={"token": token_from(message, system), "code": code_from(message)}, timeout=TIMEOUT)
    assert accepted.url == f"{system.gateway_url}/pedidos"

    # On the desktop that asked: the code alone, typed on the "check your e-mail" page.
    message = ask_for_link(system, desktop, BRUNO)
    typed = desktop.post(f"{system.gateway_url}/entrar/codigo", data={"code": code_from(message)}, timeout=TIMEOUT)
    assert typed.url == f"{system.gateway_url}/pedidos" and "Pedidos" in typed.text
    # ...which works in that browser only.
    message = ask_for_link(system, requests.Session(), BRUNO)
    elsewhere = requests.post(f"{system.gateway_url}/api/v1/auth/sessions", json={"code": code_from(message)},
                              timeout=TIMEOUT)
    assert_json_error(elsewhere, 401, "invalid_login_link")


def test_logging_in_always_issues_a_fresh_session_token(system):
    attacker = requests.Session()
    attacker_session = attacker.post(
        f"{system.gateway_url}/api/v1/auth/sessions",
        json={"token": token_from(ask_for_link(system, attacker, BRUNO), system)}, timeout=TIMEOUT,
    )
    planted = attacker_session.json()["session_token"]

    # The victim's browser carries the attacker's session, and opens Ana's link (asked
    # from her phone, so she types the code).
    victim = requests.Session()
    victim.cookies.set("portal_session", planted)
    message = ask_for_link(system, requests.Session(), ANA)
    landing = victim.get(link_from(message, system), timeout=TIMEOUT)
    started = victim.post(f"{system.gateway_url}/entrar/confirmar", allow_redirects=False, timeout=TIMEOUT, data={
        "token": token_from(message, system), "code": code_from(message), "csrf_token": csrf_field(landing),
    })

    assert started.status_code == 303
    fresh = started.cookies["portal_session"]
    assert fresh not in (planted, token_from(message, system))
    orders = requests.get(f"{system.gateway_url}/api/v1/me/orders", cookies={"portal_session": fresh},
                          timeout=TIMEOUT).json()["orders"]
    assert {order["buyer"]["email"] for order in orders} == {ANA}
    # The planted token did not become Ana's.
    planted_orders = requests.get(f"{system.gateway_url}/api/v1/me/orders",
                                  headers={"Authorization": f"Bearer {planted}"}, timeout=TIMEOUT)
    assert {order["buyer"]["email"] for order in planted_orders.json()["orders"]} == {BRUNO}


def test_cookie_flags(system):
    browser = requests.Session()
    before = inbox_ids(system, ANA)
    asked = browser.post(f"{system.gateway_url}/api/v1/auth/login-links", json={"email": ANA}, timeout=TIMEOUT)
    nonce_cookie = asked.headers["Set-Cookie"]
    message = login_email(system, ANA, before)
    started = browser.post(f"{system.gateway_url}/api/v1/auth/sessions",
                           json={"token": token_from(message, system)}, timeout=TIMEOUT)
    session_cookie = next(header for header in started.raw.headers.getlist("Set-Cookie")
                          if header.startswith("portal_session="))

    for header, max_age in ((nonce_cookie, "600"), (session_cookie, "43200")):
        attributes = [attribute.strip() for attribute in header.split(";")]
        assert {"HttpOnly", "SameSite=Lax", "Path=/", f"Max-Age={max_age}"} <= set(attributes)
        assert not any(attribute.startswith("Domain") for attribute in attributes)
        assert "Secure" not in attributes  # the e2e portal is plain http; https adds Secure and __Host-
    assert nonce_cookie.startswith("login_nonce=")


def test_the_link_is_built_from_the_configured_base_url_whatever_the_headers_say(system):
    forged = {"Host": "evil.example", "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"}
    for ask in (
        lambda: requests.post(f"{system.gateway_url}/api/v1/auth/login-links", json={"email": ANA},
                              headers=forged, timeout=TIMEOUT),
        lambda: requests.post(f"{system.gateway_url}/entrar", data={"email": ANA}, headers=forged, timeout=TIMEOUT),
    ):
        before = inbox_ids(system, ANA)
        ask()
        message = login_email(system, ANA, before)
        assert all("evil.example" not in link for link in message["links"])
        assert link_from(message, system).startswith(f"{system.gateway_url}/entrar?token=")


def test_a_spoofed_forwarded_address_is_ignored_without_trusted_proxies(system):
    browser = requests.Session()
    spoofed = {"X-Forwarded-For": "198.51.100.66", "User-Agent": FIREFOX}
    message = ask_for_link(system, browser, ANA, headers=spoofed)
    started = browser.post(f"{system.gateway_url}/api/v1/auth/sessions", json={"token": token_from(message, system)},
                           headers=spoofed, timeout=TIMEOUT)

    [current] = [s for s in browser.get(f"{system.gateway_url}/api/v1/me/sessions", timeout=TIMEOUT).json()["sessions"]
                 if s["current"]]
    assert current["address"] == "127.0.0.1"
    assert current["id"] == started.json()["session"]["id"]
    assert [row["client_address"] for row in auth_rows(system, "login_requests")].count("198.51.100.66") == 0


def test_a_buyer_sees_her_sessions_ends_one_and_logs_out(system):
    devices = {}
    for name, user_agent in (("laptop", FIREFOX), ("phone", IPHONE)):
        client = requests.Session()
        client.headers["User-Agent"] = user_agent
        message = ask_for_link(system, client, ANA)
        started = client.post(f"{system.gateway_url}/api/v1/auth/sessions",
                              json={"token": token_from(message, system)}, timeout=TIMEOUT)
        client.headers["X-CSRF-Token"] = started.json()["csrf_token"]
        devices[name] = (client, started.json())
    laptop, laptop_started = devices["laptop"]
    phone, phone_started = devices["phone"]

    listed = laptop.get(f"{system.gateway_url}/api/v1/me/sessions", timeout=TIMEOUT).json()["sessions"]
    mine = {s["id"]: s for s in listed}
    on_laptop, on_phone = mine[laptop_started["session"]["id"]], mine[phone_started["session"]["id"]]
    assert (on_laptop["device"], on_laptop["current"]) == ("Firefox no Linux", True)
    assert (on_phone["device"], on_phone["current"], on_phone["address"]) == ("Safari no iPhone", False, "127.0.0.1")
    assert set(on_phone) == {"id", "device", "address", "created_at", "last_seen_at", "current", "merchant_id"}

    page = laptop.get(f"{system.gateway_url}/sessoes", timeout=TIMEOUT)
    assert "Safari no iPhone" in page.text and "(este navegador)" in page.text

    ended = laptop.delete(f"{system.gateway_url}/api/v1/me/sessions/{phone_started['session']['id']}", timeout=TIMEOUT)
    assert ended.status_code == 204
    assert_json_error(phone.get(f"{system.gateway_url}/api/v1/me/orders", timeout=TIMEOUT), 401)

    # The logout button ends the session on the server, not just in the browser.
    token = laptop_started["session_token"]
    signed_out = laptop.post(f"{system.gateway_url}/sair", data={"csrf_token": csrf_field(page)},
                             allow_redirects=False, timeout=TIMEOUT)
    assert signed_out.status_code == 303
    assert_json_error(requests.get(f"{system.gateway_url}/api/v1/me/orders",
                                   headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT), 401)


def test_no_login_secret_is_stored_logged_published_or_persisted(system):
    with BusTap(f"{BROKER}/{system.vhost}") as tap:
        secrets = []
        browser = requests.Session()
        message = ask_for_link(system, browser, ANA)
        secrets += [token_from(message, system), code_from(message), browser.cookies["login_nonce"]]
        assert browser.get(link_from(message, system), timeout=TIMEOUT).status_code == 200  # a URL with the token
        started = browser.post(f"{system.gateway_url}/entrar/confirmar",
                               data={"token": token_from(message, system)}, timeout=TIMEOUT)
        secrets.append(browser.cookies["portal_session"])
        assert started.url.endswith("/pedidos")

        phone = requests.Session()
        message = ask_for_link(system, requests.Session(), BRUNO)
        secrets += [token_from(message, system), code_from(message)]
        phone.post(f"{system.gateway_url}/entrar/confirmar",
                   data={"token": token_from(message, system), "code": "000000"}, timeout=TIMEOUT)
        phone.post(f"{system.gateway_url}/entrar/confirmar",
                   data={"token": token_from(message, system), "code": code_from(message)}, timeout=TIMEOUT)
        secrets.append(phone.cookies["portal_session"])

        key = create_api_key(system, "acme-cursos")
        ticket_url = requests.post(
            f"{system.gateway_url}/api/v1/merchant/sso-tickets", headers={"Authorization": f"Bearer {key}"},
            json={"email": ANA, "return_url": "https://acme.example.com/conta"}, timeout=TIMEOUT,
        ).json()["url"]
        merchant_browser = requests.Session()
        merchant_browser.get(ticket_url, timeout=TIMEOUT)
        secrets += [key, ticket_url.rsplit("/", 1)[1], merchant_browser.cookies["portal_session"]]
        time.sleep(1)  # let the outboxes publish
        copied = tap.messages()

    stored = every_stored_value(system.database_urls["auth"])
    log = system.log()
    published = [str(event) for event in events(copied)]
    persistent = [message.body for message in copied if message.properties.get("delivery_mode") != 1]
    assert {"login_link_requested", "session_started"} <= {event["type"] for event in events(copied)}
    assert any(secrets[0] in message.body for message in copied)  # the tap does see the secrets travel
    for secret in secrets:
        assert not [value for value in stored if secret in value], secret
        assert secret not in log, secret
        assert not [event for event in published if secret in event], secret
        assert not [body for body in persistent if secret in body], secret
