"""auth's login links and sessions over the real bus, on a real database."""
import base64
import json
import logging
from collections import Counter
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import eventlet
import pytest
from nameko.testing.services import entrypoint_hook

from services.common.errors import NotFound, TooManyRequests, Unauthorized, ValidationFailed
from support.auth_testing import (
    BETA_BUYER, BUYER, PORTAL, SETTINGS, STRANGER, T0, rows, sha256,
)
from support.databases import every_stored_value

TTL = SETTINGS["LOGIN_LINK_TTL_SECONDS"]
IDLE = SETTINGS["SESSION_IDLE_SECONDS"]
ABSOLUTE = SETTINGS["SESSION_ABSOLUTE_SECONDS"]
NONCE = "browser-nonce-" + "n" * 29


def token_of(link):
    return parse_qs(urlsplit(link).query)["token"][0]


@pytest.fixture
def ask(cluster, wait_for_emails, login_emails):
    """`ask()` → (token, code) of a new login e-mail to BUYER, asked with NONCE."""

    def ask_for_link(email=BUYER, nonce=NONCE, address=None):
        sent_before = len(login_emails)
        assert cluster.auth.request_login_link(email, client_address=address, nonce=nonce) == {"accepted": True}
        sent = wait_for_emails(sent_before + 1)[-1]
        return token_of(sent["link"]), sent["code"]

    return ask_for_link


def refusal(call, *args, **kwargs):
    with pytest.raises(Unauthorized) as refused:
        call(*args, **kwargs)
    return refused.value.to_dict()


# Asking for a link ---------------------------------------------------------------------

def test_a_known_buyer_gets_a_link_of_which_only_hashes_are_kept(
    system, cluster, config, wait_for_emails, bus_copies,
):
    answer = cluster.auth.request_login_link("  Ana.Souza@Example.COM ", client_address="203.0.113.7", nonce=NONCE)

    assert answer == {"accepted": True}
    [sent] = wait_for_emails(1)
    assert sent["email"] == BUYER
    assert sent["link"].startswith(PORTAL + "/entrar?token=")
    token = token_of(sent["link"])
    assert len(base64.urlsafe_b64decode(token + "=")) == 32  # 256 random bits
    assert len(sent["code"]) == 6 and sent["code"].isdigit()
    assert datetime.fromisoformat(sent["expires_at"]) == T0 + timedelta(seconds=TTL)

    [request] = rows(config["AUTH_DB_URL"], "login_requests")
    assert request["email"] == BUYER
    assert request["token_hash"] == sha256(token)
    assert request["nonce_hash"] == sha256(NONCE)
    assert request["code_hash"] not in (sent["code"], sha256(sent["code"]))
    assert request["client_address"] == "203.0.113.7"
    for value in every_stored_value(config["AUTH_DB_URL"]):
        assert token not in value and NONCE not in value
        assert sent["code"] not in value

    copies = bus_copies()
    [command] = [m for m in copies if m.delivery_info["routing_key"] == "notifications.send_login_email"]
    assert command.properties["delivery_mode"] == 1
    [event] = [m for m in copies if m.delivery_info["routing_key"] == "login_link_requested"]
    assert json.loads(event.body)["data"] == {"request_id": request["id"], "email": BUYER, "actor": "buyer"}


def test_an_unknown_email_is_answered_alike_and_recorded_but_sent_nothing(
    system, cluster, config, login_emails, wait_for_emails, bus_copies,
):
    unknown = cluster.auth.request_login_link(STRANGER, client_address="203.0.113.7", nonce=NONCE)
    known = cluster.auth.request_login_link(BUYER, client_address="203.0.113.7", nonce=NONCE + "2")

    assert unknown == known == {"accepted": True}
    wait_for_emails(1)
    eventlet.sleep(0.3)
    assert [sent["email"] for sent in login_emails] == [BUYER]
    # The same work on both paths: a request row each.
    assert sorted(row["email"] for row in rows(config["AUTH_DB_URL"], "login_requests")) == [BUYER, STRANGER]
    events = [m for m in bus_copies() if m.delivery_info["routing_key"] == "login_link_requested"]
    assert [json.loads(m.body)["data"]["email"] for m in events] == [BUYER]


def test_the_answer_does_not_wait_for_the_email(
    start_subscriptions, start_notifications, start_auth, cluster, login_emails, wait_for_emails,
):
    held = eventlet.event.Event()
    start_subscriptions()
    start_notifications(gate=held)
    start_auth()

    # notifications holds the e-mail until the test lets it go: an answer that waited
    # for it would not come back at all.
    assert cluster.auth.request_login_link(BUYER, nonce=NONCE) == {"accepted": True}
    assert login_emails == []

    held.send()
    assert wait_for_emails(1)[0]["email"] == BUYER


def test_the_sixth_request_for_one_email_in_the_window_sends_nothing(
    system, cluster, clock, config, login_emails, wait_for_emails,
):
    for attempt in range(5):
        cluster.auth.request_login_link(BUYER, client_address=f"203.0.113.{attempt}", nonce=f"{NONCE}{attempt}")
    wait_for_emails(5)

    assert cluster.auth.request_login_link(BUYER, client_address="203.0.113.99", nonce=NONCE) == {"accepted": True}

    eventlet.sleep(0.3)
    assert len(login_emails) == 5
    assert len(rows(config["AUTH_DB_URL"], "login_requests")) == 5

    clock(T0 + timedelta(seconds=SETTINGS["LOGIN_RATE_WINDOW_SECONDS"] + 1))
    cluster.auth.request_login_link(BUYER, client_address="203.0.113.99", nonce=NONCE)
    assert len(wait_for_emails(6)) == 6


def test_the_31st_request_from_one_address_sends_nothing(system, cluster, config, login_emails, wait_for_emails):
    for number in range(30):
        cluster.auth.request_login_link(
            f"someone{number}@example.com", client_address="198.51.100.4", nonce=f"{NONCE}{number}",
        )

    cluster.auth.request_login_link(BUYER, client_address="198.51.100.4", nonce=NONCE)
    eventlet.sleep(0.3)
    assert login_emails == []

    # The limit is the address's, not the buyer's.
    cluster.auth.request_login_link(BUYER, client_address="198.51.100.5", nonce=NONCE)
    assert [sent["email"] for sent in wait_for_emails(1)] == [BUYER]


def test_limits_hold_across_a_restart(
    start_subscriptions, start_notifications, start_auth, cluster, config, wait_for_emails, login_emails,
):
    start_subscriptions()
    start_notifications()
    first = start_auth()
    for attempt in range(5):
        cluster.auth.request_login_link(BUYER, nonce=f"{NONCE}{attempt}")
    wait_for_emails(5)
    first.stop()

    start_auth()
    cluster.auth.request_login_link(BUYER, nonce=NONCE)

    eventlet.sleep(0.3)
    assert len(login_emails) == 5
    assert len(rows(config["AUTH_DB_URL"], "login_requests")) == 5


def test_a_malformed_email_is_refused(system, cluster):
    with pytest.raises(ValidationFailed) as refused:
        cluster.auth.request_login_link("ana@@example")

    assert list(refused.value.fields) == ["email"]


def test_without_subscriptions_the_answer_is_unchanged_and_nothing_is_sent(
    start_notifications, start_auth, cluster, config, login_emails, caplog,
):
    start_notifications()
    start_auth()

    with caplog.at_level(logging.WARNING, logger="services.auth"):
        assert cluster.auth.request_login_link(BUYER, nonce=NONCE) == {"accepted": True}
        eventlet.sleep(SETTINGS["RPC_TIMEOUT"] + 0.5)

    assert login_emails == []
    [request] = rows(config["AUTH_DB_URL"], "login_requests")
    [warning] = [record for record in caplog.records if record.name == "services.auth.service"]
    assert request["id"] in warning.getMessage()
    assert "ServiceUnavailable" in warning.getMessage()


# Redeeming it -------------------------------------------------------------------------

def test_the_asking_browser_opens_one_session_with_the_link_once(system, cluster, config, ask, bus_copies):
    token, _ = ask()

    redeemed = cluster.auth.redeem_login(token=token, nonce=NONCE, user_agent="Firefox/140", client_address="203.0.113.7")

    session = redeemed["session"]
    assert session["email"] == BUYER
    assert session["merchant_id"] is None
    assert datetime.fromisoformat(session["created_at"]) == T0
    assert datetime.fromisoformat(session["expires_at"]) == T0 + timedelta(seconds=ABSOLUTE)
    [stored] = rows(config["AUTH_DB_URL"], "sessions")
    assert stored["id"] == session["id"]
    assert stored["token_hash"] == sha256(redeemed["session_token"])
    assert stored["user_agent"] == "Firefox/140"
    assert redeemed["session_token"] != token
    assert all(redeemed["session_token"] not in value for value in every_stored_value(config["AUTH_DB_URL"]))

    assert refusal(cluster.auth.redeem_login, token=token, nonce=NONCE)["code"] == "invalid_login_link"

    [event] = [m for m in bus_copies() if m.delivery_info["routing_key"] == "session_started"]
    assert json.loads(event.body)["data"] == {"session_id": session["id"], "email": BUYER, "merchant_id": None}


def test_a_link_opened_without_the_asking_browsers_nonce_needs_the_code(system, cluster, ask):
    token, code = ask()

    assert refusal(cluster.auth.redeem_login, token=token)["code"] == "code_required"
    assert refusal(cluster.auth.redeem_login, token=token, nonce="another-browser")["code"] == "code_required"
    wrong = "000000" if code != "000000" else "111111"
    assert refusal(cluster.auth.redeem_login, token=token, code=wrong)["code"] == "invalid_code"

    assert cluster.auth.redeem_login(token=token, code=code)["session"]["email"] == BUYER


def test_the_code_alone_works_only_in_the_asking_browser(system, cluster, ask):
    _, code = ask()

    assert refusal(cluster.auth.redeem_login, code=code)["code"] == "invalid_login_link"
    assert refusal(cluster.auth.redeem_login, code=code, nonce="another-browser")["code"] == "invalid_login_link"

    assert cluster.auth.redeem_login(code=code, nonce=NONCE)["session"]["email"] == BUYER


def test_five_wrong_codes_kill_the_request(system, cluster, ask):
    token, code = ask()
    wrong = f"{(int(code) + 1) % 10 ** 6:06d}"

    answers = [refusal(cluster.auth.redeem_login, token=token, code=wrong)["code"] for _ in range(5)]

    assert answers == ["invalid_code"] * 5
    assert refusal(cluster.auth.redeem_login, token=token, code=code)["code"] == "invalid_login_link"
    assert refusal(cluster.auth.redeem_login, token=token, nonce=NONCE)["code"] == "invalid_login_link"
    assert refusal(cluster.auth.describe_login_link, token)["code"] == "invalid_login_link"


def test_concurrent_guesses_count_every_try(system, cluster, config, ask):
    token, code = ask()
    wrong = f"{(int(code) + 1) % 10 ** 6:06d}"

    calls = [cluster.auth.redeem_login.call_async(code=wrong, nonce=NONCE) for _ in range(20)]
    codes = []
    for call in calls:
        with pytest.raises(Unauthorized) as refused:
            call.result()
        codes.append(refused.value.code)

    assert sorted(codes) == ["invalid_code"] * 5 + ["invalid_login_link"] * 15
    [request] = rows(config["AUTH_DB_URL"], "login_requests")
    assert request["failed_code_attempts"] == 5
    assert refusal(cluster.auth.redeem_login, token=token, code=code)["code"] == "invalid_login_link"


def wrong_code_for(config, nonce):
    """A code that is not the one of the request asked with `nonce` (found by its hash)."""
    [request] = [row for row in rows(config["AUTH_DB_URL"], "login_requests") if row["nonce_hash"] == sha256(nonce)]
    return next(code for code in ("000000", "111111") if sha256(f"{request['id']}:{code}") != request["code_hash"])


def type_wrong_codes(cluster, config, email, nonce, times):
    """A guesser's browser asks for `email`'s login and types `times` wrong codes alone."""
    cluster.auth.request_login_link(email, nonce=nonce)
    wrong = wrong_code_for(config, nonce)
    return [refusal(cluster.auth.redeem_login, code=wrong, nonce=nonce)["code"] for _ in range(times)]


def test_ten_wrong_codes_typed_alone_refuse_that_form_for_the_email_for_24_hours_but_not_the_link(
    system, cluster, clock, config, ask,
):
    # Wrong codes typed with the link's token are not counted...
    token, code = ask(nonce=NONCE + "link")
    assert [refusal(cluster.auth.redeem_login, token=token, code=wrong_code_for(config, NONCE + "link"))["code"]
            for _ in range(5)] == ["invalid_code"] * 5
    # ...those typed alone are, across the requests of the e-mail.
    assert type_wrong_codes(cluster, config, BUYER, "guesser-1", 5) == ["invalid_code"] * 5
    assert type_wrong_codes(cluster, config, BUYER, "guesser-2", 5) == ["invalid_code"] * 5

    token, code = ask(nonce=NONCE)
    with pytest.raises(TooManyRequests) as locked:
        cluster.auth.redeem_login(code=code, nonce=NONCE)
    assert locked.value.code == "code_login_locked"
    assert "use o link que enviamos no e-mail" in locked.value.message and list(locked.value.fields) == ["code"]
    assert len(rows(config["AUTH_DB_URL"], "login_code_failures")) == 10
    # The buyer still gets in: with the code and the link on another device, or with
    # the link in the browser that asked.
    assert cluster.auth.redeem_login(token=token, code=code)["session"]["email"] == BUYER
    token, _ = ask(nonce=NONCE + "again")
    assert cluster.auth.redeem_login(token=token, nonce=NONCE + "again")["session"]["email"] == BUYER

    # Until 24 hours after the wrong codes; from then on the code alone works again.
    clock(T0 + timedelta(days=1, seconds=-1))
    _, code = ask(nonce=NONCE + "next-day")
    with pytest.raises(TooManyRequests):
        cluster.auth.redeem_login(code=code, nonce=NONCE + "next-day")
    clock(T0 + timedelta(days=1))
    assert cluster.auth.redeem_login(code=code, nonce=NONCE + "next-day")["session"]["email"] == BUYER


def test_the_refusal_of_the_code_alone_is_the_same_for_an_email_without_purchases(system, cluster, config):
    answers = {}
    for email in (BUYER, STRANGER):
        assert type_wrong_codes(cluster, config, email, f"{email}-1", 5) == ["invalid_code"] * 5
        assert type_wrong_codes(cluster, config, email, f"{email}-2", 5) == ["invalid_code"] * 5
        cluster.auth.request_login_link(email, nonce=f"{email}-3")
        with pytest.raises(TooManyRequests) as locked:
            cluster.auth.redeem_login(code=wrong_code_for(config, f"{email}-3"), nonce=f"{email}-3")
        answers[email] = locked.value.to_dict()

    assert answers[BUYER] == answers[STRANGER]
    assert answers[BUYER]["code"] == "code_login_locked"


def test_concurrent_wrong_codes_typed_alone_are_capped_exactly(system, cluster, config):
    nonces = [f"guesser-{number}" for number in range(4)]
    guesses = []
    for nonce in nonces:
        cluster.auth.request_login_link(BUYER, nonce=nonce)
        guesses += [(nonce, wrong_code_for(config, nonce))] * 5

    calls = [cluster.auth.redeem_login.call_async(code=code, nonce=nonce) for nonce, code in guesses]
    answers = []
    for call in calls:
        with pytest.raises((Unauthorized, TooManyRequests)) as refused:
            call.result()
        answers.append(refused.value.code)

    assert Counter(answers) == {"invalid_code": 10, "code_login_locked": 10}
    assert len(rows(config["AUTH_DB_URL"], "login_code_failures")) == 10


def test_the_purge_forgets_wrong_codes_once_24_hours_old(system, cluster, clock, config):
    type_wrong_codes(cluster, config, BUYER, "guesser-1", 1)
    clock(T0 + timedelta(hours=1))
    type_wrong_codes(cluster, config, BUYER, "guesser-2", 1)

    clock(T0 + timedelta(days=1))
    with entrypoint_hook(system, "purge_old_requests") as purge:
        purge()

    assert len(rows(config["AUTH_DB_URL"], "login_code_failures")) == 1


def test_a_link_works_until_its_last_second(system, cluster, clock, ask):
    token, _ = ask()
    clock(T0 + timedelta(seconds=TTL - 1))

    assert cluster.auth.redeem_login(token=token, nonce=NONCE)["session"]["email"] == BUYER


def test_from_its_expiry_a_link_is_refused_like_a_used_or_unknown_one(system, cluster, clock, ask):
    expired, _ = ask()
    used, _ = ask(email=BETA_BUYER, nonce=NONCE + "b")
    cluster.auth.redeem_login(token=used, nonce=NONCE + "b")
    clock(T0 + timedelta(seconds=TTL))

    refusals = [
        refusal(cluster.auth.redeem_login, token=expired, nonce=NONCE),
        refusal(cluster.auth.redeem_login, token=used, nonce=NONCE + "b"),
        refusal(cluster.auth.redeem_login, token="not-a-token-we-issued", nonce=NONCE),
    ]

    assert refusals[0] == refusals[1] == refusals[2]
    assert refusals[0]["code"] == "invalid_login_link"
    assert refusals[0]["message"] == "Este link de acesso é inválido ou expirou. Peça um novo."


def test_logging_in_ends_the_other_links_of_the_same_email(system, cluster, ask):
    older, _ = ask(nonce=NONCE + "old")
    newer, _ = ask(nonce=NONCE + "new")

    cluster.auth.redeem_login(token=newer, nonce=NONCE + "new")

    assert refusal(cluster.auth.redeem_login, token=older, nonce=NONCE + "old")["code"] == "invalid_login_link"


def test_describing_a_link_shows_a_masked_email_and_uses_nothing(system, cluster, ask):
    token, _ = ask()

    for _ in range(3):
        assert cluster.auth.describe_login_link(token) == {"email_hint": "a•••@example.com"}

    cluster.auth.redeem_login(token=token, nonce=NONCE)
    assert refusal(cluster.auth.describe_login_link, token)["code"] == "invalid_login_link"


# Sessions -----------------------------------------------------------------------------

def test_every_login_gets_a_fresh_session_token(system, cluster, ask):
    tokens = set()
    for attempt in range(3):
        token, _ = ask(nonce=f"{NONCE}{attempt}")
        tokens.add(token)
        tokens.add(cluster.auth.redeem_login(token=token, nonce=f"{NONCE}{attempt}")["session_token"])

    assert len(tokens) == 6


def test_a_session_resolves_to_an_identity_until_logout(system, cluster, ask):
    token, _ = ask()
    session_token = cluster.auth.redeem_login(token=token, nonce=NONCE)["session_token"]

    identity = cluster.auth.get_session(session_token)
    assert identity["email"] == BUYER
    assert identity["merchant_id"] is None and identity["return_url"] is None

    assert cluster.auth.end_session(session_token) == {"ended": True}
    assert refusal(cluster.auth.get_session, session_token)["code"] == "session_expired"
    assert cluster.auth.end_session(session_token) == {"ended": True}


def test_activity_keeps_a_session_alive_until_the_absolute_timeout(system, cluster, clock, ask):
    token, _ = ask()
    session_token = cluster.auth.redeem_login(token=token, nonce=NONCE)["session_token"]

    for seconds in (IDLE - 1, 2 * IDLE - 2, ABSOLUTE - 1):
        clock(T0 + timedelta(seconds=seconds))
        assert cluster.auth.get_session(session_token)["email"] == BUYER

    clock(T0 + timedelta(seconds=ABSOLUTE))
    assert refusal(cluster.auth.get_session, session_token)["code"] == "session_expired"


def test_an_idle_session_expires(system, cluster, clock, ask):
    token, _ = ask()
    session_token = cluster.auth.redeem_login(token=token, nonce=NONCE)["session_token"]
    clock(T0 + timedelta(seconds=IDLE))

    assert refusal(cluster.auth.get_session, session_token)["code"] == "session_expired"


def test_an_unknown_session_token_is_refused(system, cluster):
    assert refusal(cluster.auth.get_session, "never-issued")["code"] == "session_expired"


def test_a_buyer_lists_her_sessions_and_ends_one_elsewhere(system, cluster, ask):
    sessions = {}
    for device, user_agent in (("laptop", "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"),
                               ("phone", "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) Safari/604.1")):
        token, _ = ask(nonce=f"{NONCE}{device}")
        redeemed = cluster.auth.redeem_login(
            token=token, nonce=f"{NONCE}{device}", user_agent=user_agent, client_address="203.0.113.7",
        )
        sessions[device] = redeemed
    laptop = cluster.auth.get_session(sessions["laptop"]["session_token"])

    listed = cluster.auth.list_sessions(laptop)

    assert {(s["device"], s["current"], s["address"]) for s in listed} == {
        ("Firefox no Linux", True, "203.0.113.7"), ("Safari no iPhone", False, "203.0.113.7"),
    }
    assert all(datetime.fromisoformat(s["last_seen_at"]) == T0 for s in listed)

    assert cluster.auth.end_session_by_id(laptop, sessions["phone"]["session"]["id"]) == {"ended": True}
    assert refusal(cluster.auth.get_session, sessions["phone"]["session_token"])["code"] == "session_expired"
    assert [s["id"] for s in cluster.auth.list_sessions(laptop)] == [laptop["session_id"]]


def test_another_buyers_session_is_not_found(system, cluster, ask, wait_for_emails):
    token, _ = ask()
    ana = cluster.auth.get_session(cluster.auth.redeem_login(token=token, nonce=NONCE)["session_token"])
    bruno_token, _ = ask(email=BETA_BUYER, nonce=NONCE + "b")
    bruno = cluster.auth.redeem_login(token=bruno_token, nonce=NONCE + "b")

    with pytest.raises(NotFound):
        cluster.auth.end_session_by_id(ana, bruno["session"]["id"])
    assert cluster.auth.get_session(bruno["session_token"])["email"] == BETA_BUYER
