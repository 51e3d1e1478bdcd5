"""Merchants' API keys and SSO tickets over the real bus, and the one scan every secret
auth handles must pass: not in its database, logs, events or persistent messages."""
import json
import logging
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from services.common.errors import NotFound, RuleRefused, Unauthorized
from support.auth_testing import (
    ACME, ACME_ORIGIN, BETA, BETA_BUYER, BUYER, PORTAL, SETTINGS, T0, rows, sha256,
)
from support.databases import every_stored_value

RETURN_URL = f"{ACME_ORIGIN}/minha-conta?aba=assinaturas"


def ticket_of(url):
    assert url.startswith(PORTAL + "/sso/")
    return url.rsplit("/", 1)[1]


def refusal(call, *args, error=Unauthorized, **kwargs):
    with pytest.raises(error) as refused:
        call(*args, **kwargs)
    return refused.value.to_dict()


# API keys -----------------------------------------------------------------------------

def test_an_api_key_is_shown_once_kept_hashed_and_works_until_revoked(system, cluster, config):
    created = cluster.auth.create_api_key(ACME)

    key = created["key"]
    assert key.startswith(f"pk_live_{created['prefix']}_")
    assert created["merchant_id"] == ACME and created["revoked_at"] is None
    [stored] = rows(config["AUTH_DB_URL"], "api_keys")
    assert stored["prefix"] == created["prefix"]
    assert stored["key_hash"] == sha256(key)
    assert all(key not in value and key.rsplit("_", 1)[1] not in value
               for value in every_stored_value(config["AUTH_DB_URL"]))

    assert cluster.auth.authenticate_api_key(key) == {"merchant_id": ACME}
    tampered = key[:-1] + ("A" if key[-1] != "A" else "B")
    for wrong in (tampered, "pk_live_000000000000_" + "x" * 43, "nonsense", ""):
        assert refusal(cluster.auth.authenticate_api_key, wrong)["code"] == "invalid_api_key"

    revoked = cluster.auth.revoke_api_key(created["prefix"])
    assert datetime.fromisoformat(revoked["revoked_at"]) == T0
    assert refusal(cluster.auth.authenticate_api_key, key)["code"] == "invalid_api_key"
    assert cluster.auth.list_api_keys(ACME) == [revoked]
    assert cluster.auth.list_api_keys(BETA) == []


def test_keys_are_only_for_existing_merchants(system, cluster):
    with pytest.raises(NotFound):
        cluster.auth.create_api_key("no-such-merchant")
    with pytest.raises(NotFound):
        cluster.auth.revoke_api_key("0123456789ab")


# SSO ------------------------------------------------------------------------------------

def test_a_ticket_opens_one_merchant_scoped_session_once(system, cluster, config):
    issued = cluster.auth.issue_sso_ticket(ACME, BUYER, RETURN_URL)

    ticket = ticket_of(issued["url"])
    assert datetime.fromisoformat(issued["expires_at"]) == T0 + timedelta(seconds=SETTINGS["SSO_TICKET_TTL_SECONDS"])
    [stored] = rows(config["AUTH_DB_URL"], "sso_tickets")
    assert stored["ticket_hash"] == sha256(ticket)
    assert all(ticket not in value for value in every_stored_value(config["AUTH_DB_URL"]))

    started = cluster.auth.redeem_sso_ticket(ticket, user_agent="Chrome/130", client_address="203.0.113.8")

    assert started["session"]["merchant_id"] == ACME
    identity = cluster.auth.get_session(started["session_token"])
    assert identity == {
        "session_id": started["session"]["id"], "email": BUYER, "merchant_id": ACME, "return_url": RETURN_URL,
    }
    assert refusal(cluster.auth.redeem_sso_ticket, ticket)["code"] == "invalid_sso_ticket"


def test_concurrent_redemptions_of_a_ticket_open_one_session(system, cluster, config):
    ticket = ticket_of(cluster.auth.issue_sso_ticket(ACME, BUYER, RETURN_URL)["url"])

    calls = [cluster.auth.redeem_sso_ticket.call_async(ticket) for _ in range(20)]
    outcomes = []
    for call in calls:
        try:
            outcomes.append(call.result()["session"]["id"])
        except Unauthorized:
            outcomes.append("refused")

    assert outcomes.count("refused") == 19
    assert len(rows(config["AUTH_DB_URL"], "sessions")) == 1


def test_a_ticket_works_for_sixty_seconds(system, cluster, clock):
    in_time = ticket_of(cluster.auth.issue_sso_ticket(ACME, BUYER, RETURN_URL)["url"])
    too_late = ticket_of(cluster.auth.issue_sso_ticket(ACME, BUYER, RETURN_URL)["url"])

    clock(T0 + timedelta(seconds=59))
    assert cluster.auth.redeem_sso_ticket(in_time)["session"]["email"] == BUYER
    clock(T0 + timedelta(seconds=60))
    assert refusal(cluster.auth.redeem_sso_ticket, too_late)["code"] == "invalid_sso_ticket"


def test_a_merchant_gets_no_ticket_for_another_merchants_buyer(system, cluster):
    refused = refusal(cluster.auth.issue_sso_ticket, ACME, BETA_BUYER, RETURN_URL, error=RuleRefused)
    assert refused["code"] == "unknown_customer"
    assert refusal(cluster.auth.issue_sso_ticket, ACME, "nobody@example.com", RETURN_URL,
                   error=RuleRefused)["code"] == "unknown_customer"


@pytest.mark.parametrize("return_url", [
    "https://evil.example.com/",
    "http://acme.example.com/",                # another scheme is another origin
    "https://acme.example.com:8443/",          # and so is another port
    "https://acme.example.com.evil.example/",
    "https://acme.example.com@evil.example/",
])
def test_a_return_url_off_the_merchants_origins_is_refused(system, cluster, return_url):
    refused = refusal(cluster.auth.issue_sso_ticket, ACME, BUYER, return_url, error=RuleRefused)
    assert refused["code"] == "return_url_not_allowed"


def test_a_merchant_without_origins_gets_no_ticket(system, cluster):
    refused = refusal(cluster.auth.issue_sso_ticket, BETA, BETA_BUYER, "https://beta.example.com/", error=RuleRefused)
    assert refused["code"] == "return_url_not_allowed"


def test_a_scoped_session_lists_only_that_merchants_sessions(system, cluster, ask):
    token, _ = ask()
    own = cluster.auth.redeem_login(token=token, nonce="browser-nonce")
    ticket = ticket_of(cluster.auth.issue_sso_ticket(ACME, BUYER, RETURN_URL)["url"])
    scoped = cluster.auth.get_session(cluster.auth.redeem_sso_ticket(ticket)["session_token"])

    assert [s["id"] for s in cluster.auth.list_sessions(scoped)] == [scoped["session_id"]]
    with pytest.raises(NotFound):
        cluster.auth.end_session_by_id(scoped, own["session"]["id"])
    unscoped = cluster.auth.get_session(own["session_token"])
    assert len(cluster.auth.list_sessions(unscoped)) == 2


@pytest.fixture
def ask(cluster, wait_for_emails, login_emails):
    def ask_for_link():
        cluster.auth.request_login_link(BUYER, nonce="browser-nonce")
        link = wait_for_emails(len(login_emails) + 1)[-1]["link"]
        return parse_qs(urlsplit(link).query)["token"][0], login_emails[-1]["code"]

    return ask_for_link


# Every secret, everywhere ------------------------------------------------------------------

def test_no_secret_is_kept_logged_put_in_an_event_or_in_a_persistent_message(
    system, cluster, config, login_emails, wait_for_emails, bus_copies, caplog,
):
    caplog.set_level(logging.DEBUG)
    cluster.auth.request_login_link(BUYER, client_address="203.0.113.7", nonce="browser-nonce-1")
    cluster.auth.request_login_link(BETA_BUYER, client_address="203.0.113.7", nonce="browser-nonce-2")
    sent_to = {sent["email"]: sent for sent in wait_for_emails(2)}
    ana_token, ana_code = parse_qs(urlsplit(sent_to[BUYER]["link"]).query)["token"][0], sent_to[BUYER]["code"]
    bruno_token, bruno_code = (
        parse_qs(urlsplit(sent_to[BETA_BUYER]["link"]).query)["token"][0], sent_to[BETA_BUYER]["code"],
    )
    with pytest.raises(Unauthorized):
        cluster.auth.redeem_login(token=bruno_token, code=f"{(int(bruno_code) + 1) % 10 ** 6:06d}")
    ana = cluster.auth.redeem_login(token=ana_token, nonce="browser-nonce-1")
    bruno = cluster.auth.redeem_login(token=bruno_token, code=bruno_code)
    cluster.auth.get_session(ana["session_token"])
    cluster.auth.end_session(bruno["session_token"])
    secrets = [
        "browser-nonce-1", "browser-nonce-2", ana_token, ana_code, bruno_token, bruno_code,
        ana["session_token"], bruno["session_token"],
    ]
    ticket = ticket_of(cluster.auth.issue_sso_ticket(ACME, BUYER, RETURN_URL)["url"])
    secrets += [ticket, cluster.auth.redeem_sso_ticket(ticket)["session_token"]]
    key = cluster.auth.create_api_key(ACME)["key"]
    cluster.auth.authenticate_api_key(key)
    with pytest.raises(Unauthorized):
        cluster.auth.authenticate_api_key(key + "x")
    secrets += [key, key.rsplit("_", 1)[1]]

    stored = every_stored_value(config["AUTH_DB_URL"])
    copies = bus_copies()
    events = [json.loads(m.body) for m in copies if m.delivery_info["exchange"] == "auth.events"]
    assert {event["type"] for event in events} == {"login_link_requested", "session_started"}
    # The test's own requests to auth stand for the gateway's; everything else on the
    # bus is auth's (its replies, its command to notifications) or the fakes'.
    carriers = [m for m in copies if not m.delivery_info["routing_key"].startswith("auth.")]
    for secret in secrets:
        assert not [value for value in stored if secret in value], secret
        assert secret not in caplog.text, secret
        assert not [event for event in events if secret in json.dumps(event)], secret
        assert all(m.properties["delivery_mode"] == 1 for m in carriers if secret in m.body), secret
    assert any(ana["session_token"] in m.body for m in carriers)  # the scan sees replies
