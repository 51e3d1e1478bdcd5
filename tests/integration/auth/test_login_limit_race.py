"""Forty concurrent requests for login e-mails against auth on a real database (run
with PORTAL_TEST_DATABASE=postgresql to race on PostgreSQL): each limit lets through
exactly its number of requests, and only those are recorded and e-mailed."""
import pytest

from support.auth_testing import BETA_BUYER, BUYER, SETTINGS, rows

REQUESTS = 40
PER_EMAIL = SETTINGS["LOGIN_RATE_LIMIT_PER_EMAIL"]
# Below what the two buyers' own limits allow together (2 × 5), so that the address's
# limit is the one that binds.
PER_ADDRESS = 3


@pytest.fixture
def config(service_config, clock):
    return service_config("auth", **{**SETTINGS, "LOGIN_RATE_LIMIT_PER_ADDRESS": PER_ADDRESS})


def ask_all_at_once(cluster, asks):
    """Every (email, client_address) asked before any answer is awaited."""
    calls = [
        cluster.auth.request_login_link.call_async(email, client_address=address, nonce=f"nonce-{number}")
        for number, (email, address) in enumerate(asks)
    ]
    return [call.result() for call in calls]


def sent_once_auth_stopped(auth, login_emails):
    """The login e-mails auth asked for, once stopping it has let every background
    delivery finish."""
    auth.stop()
    return login_emails


def test_forty_concurrent_requests_for_one_email_record_and_send_its_limit(system, cluster, config, login_emails):
    answers = ask_all_at_once(cluster, [(BUYER, f"203.0.113.{number}") for number in range(REQUESTS)])

    assert answers == [{"accepted": True}] * REQUESTS
    assert len(rows(config["AUTH_DB_URL"], "login_requests")) == PER_EMAIL
    assert [sent["email"] for sent in sent_once_auth_stopped(system, login_emails)] == [BUYER] * PER_EMAIL


def test_forty_concurrent_requests_from_one_address_record_and_send_its_limit(
    system, cluster, config, login_emails,
):
    buyers = [BUYER, BETA_BUYER]
    answers = ask_all_at_once(cluster, [(buyers[number % 2], "198.51.100.4") for number in range(REQUESTS)])

    assert answers == [{"accepted": True}] * REQUESTS
    assert len(rows(config["AUTH_DB_URL"], "login_requests")) == PER_ADDRESS
    assert len(sent_once_auth_stopped(system, login_emails)) == PER_ADDRESS
