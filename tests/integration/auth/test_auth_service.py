"""auth over the real bus, on a real database.

What lies outside auth's boundary is replaced over the same bus: a small fake
`subscriptions` (who has purchases) and a fake `notifications` (records what it was
asked to send) are real nameko services on this test's vhost.
"""
import hashlib
import logging
import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import eventlet
import pytest
from kombu import Connection, Queue
from nameko.rpc import get_rpc_exchange, rpc
from nameko.standalone.rpc import ClusterRpcProxy
from sqlalchemy import MetaData, select

from services.auth.service import AuthService
from services.common.clock import write_clock_file
from services.common.db import make_engine
from services.common.errors import ServiceUnavailable, Unauthorized, ValidationFailed
from services.common.outbox import event_exchange
from support.databases import every_stored_value

BUYER = "ana.souza@example.com"
STRANGER = "ninguem@example.com"
PORTAL = "https://portal.example.com"
T0 = datetime(2026, 5, 4, 12, 0, tzinfo=timezone.utc)
TTL = 600
IDLE = 1800
ABSOLUTE = 5000


def sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def clock(tmp_path, monkeypatch):
    """Moves the time every service of this process sees."""
    path = tmp_path / "clock.json"
    monkeypatch.setenv("CLOCK_FILE", str(path))

    def set_time(moment):
        write_clock_file(path, frozen_at=moment)

    set_time(T0)
    return set_time


@pytest.fixture
def config(service_config, clock):
    return service_config(
        "auth", RPC_TIMEOUT=1, PORTAL_BASE_URL=PORTAL, LOGIN_LINK_TTL_SECONDS=TTL,
        SESSION_IDLE_SECONDS=IDLE, SESSION_ABSOLUTE_SECONDS=ABSOLUTE,
    )


@pytest.fixture
def login_emails():
    """What the fake notifications service was asked to send."""
    return []


@pytest.fixture
def start_subscriptions(container_factory, config):
    class FakeSubscriptions:
        name = "subscriptions"

        @rpc
        def customer_exists(self, email):
            return email == BUYER

    def start():
        container_factory(FakeSubscriptions, config).start()

    return start


@pytest.fixture
def start_notifications(container_factory, config, login_emails):
    class FakeNotifications:
        name = "notifications"

        @rpc
        def send_login_email(self, email, link, code, expires_at):
            login_emails.append({"email": email, "link": link, "code": code, "expires_at": expires_at})
            return {"status": "sent", "email_id": str(uuid.uuid4())}

    def start():
        container_factory(FakeNotifications, config).start()

    return start


@pytest.fixture
def start_auth(container_factory, config):
    def start():
        container_factory(AuthService, config).start()

    return start


@pytest.fixture
def system(start_subscriptions, start_notifications, start_auth):
    start_subscriptions()
    start_notifications()
    start_auth()


@pytest.fixture
def cluster(config):
    with ClusterRpcProxy(config, timeout=10) as proxy:
        yield proxy


@pytest.fixture
def amqp(config):
    with Connection(config["AMQP_URI"]) as connection:
        yield connection


def bound_queue(connection, exchange, routing_key):
    """A queue receiving copies of what is published to `exchange` from now on."""
    queue = Queue(f"test-{uuid.uuid4().hex}", exchange=exchange, routing_key=routing_key, auto_delete=True)
    return connection.SimpleQueue(queue)


def rows(db_url, table_name):
    engine = make_engine(db_url)
    metadata = MetaData()
    metadata.reflect(engine, only=[table_name])
    try:
        with engine.connect() as connection:
            return [row._asdict() for row in connection.execute(select(metadata.tables[table_name]))]
    finally:
        engine.dispose()


def token_of(link):
    return parse_qs(urlsplit(link).query)["token"][0]


def ask_for_link(cluster, login_emails, email=BUYER):
    assert cluster.auth.request_login_link(email) == {"accepted": True}
    return token_of(login_emails[-1]["link"])


def test_known_buyer_is_sent_a_link_of_which_only_hashes_are_kept(system, cluster, config, login_emails, amqp):
    events = bound_queue(amqp, event_exchange("auth"), "login_link_requested")
    rpc_copies = bound_queue(amqp, get_rpc_exchange(config), "notifications.send_login_email")

    answer = cluster.auth.request_login_link("  Ana.Souza@Example.COM ", client_address="203.0.113.7")

    assert answer == {"accepted": True}
    [sent] = login_emails
    assert sent["email"] == BUYER
    assert sent["link"].startswith(PORTAL + "/entrar?token=")
    token = token_of(sent["link"])
    assert len(token) == 43
    assert len(sent["code"]) == 6 and sent["code"].isdigit()
    assert datetime.fromisoformat(sent["expires_at"]) == T0 + timedelta(seconds=TTL)

    [request] = rows(config["AUTH_DB_URL"], "login_requests")
    assert request["email"] == BUYER
    assert request["token_hash"] == sha256(token)
    assert request["consumed_at"] is None
    assert request["client_address"] == "203.0.113.7"
    for value in every_stored_value(config["AUTH_DB_URL"]):
        assert token not in value
        assert value != sent["code"]

    # The command carrying the secrets is not persisted by the broker.
    copy = rpc_copies.get(timeout=5)
    assert copy.properties["delivery_mode"] == 1
    copy.ack()

    event = events.get(timeout=5)
    assert event.payload["type"] == "login_link_requested"
    assert event.payload["merchant_id"] is None
    assert event.payload["data"] == {"request_id": request["id"], "email": BUYER}
    event.ack()


def test_unknown_email_gets_the_same_answer_and_nothing_is_sent(system, cluster, config, login_emails):
    assert cluster.auth.request_login_link(STRANGER) == {"accepted": True}

    assert login_emails == []
    assert rows(config["AUTH_DB_URL"], "login_requests") == []


def test_malformed_email_is_refused(system, cluster):
    with pytest.raises(ValidationFailed) as refused:
        cluster.auth.request_login_link("ana@@example")

    assert list(refused.value.fields) == ["email"]


def test_link_opens_one_session_and_works_only_once(system, cluster, config, login_emails, amqp):
    events = bound_queue(amqp, event_exchange("auth"), "session_started")
    token = ask_for_link(cluster, login_emails)

    redeemed = cluster.auth.redeem_login(token, user_agent="Firefox/140", client_address="203.0.113.7")

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

    with pytest.raises(Unauthorized) as refused:
        cluster.auth.redeem_login(token)
    assert refused.value.code == "invalid_login_link"

    event = events.get(timeout=5)
    assert event.payload["data"] == {"session_id": session["id"], "email": BUYER, "merchant_id": None}
    event.ack()


def test_unknown_used_and_expired_links_are_refused_alike(system, cluster, clock, login_emails):
    used = ask_for_link(cluster, login_emails)
    cluster.auth.redeem_login(used)
    expired = ask_for_link(cluster, login_emails)
    clock(T0 + timedelta(seconds=TTL))

    refusals = []
    for token in (used, expired, "not-a-token-we-issued"):
        with pytest.raises(Unauthorized) as refused:
            cluster.auth.redeem_login(token)
        refusals.append(refused.value.to_dict())

    assert refusals[0] == refusals[1] == refusals[2]
    assert refusals[0]["code"] == "invalid_login_link"
    assert refusals[0]["message"] == "Este link de acesso é inválido ou expirou. Peça um novo."


def test_link_works_until_its_last_second(system, cluster, clock, login_emails):
    token = ask_for_link(cluster, login_emails)
    clock(T0 + timedelta(seconds=TTL - 1))

    assert cluster.auth.redeem_login(token)["session"]["email"] == BUYER


def test_logging_in_ends_the_other_links_of_the_same_email(system, cluster, login_emails):
    older = ask_for_link(cluster, login_emails)
    newer = ask_for_link(cluster, login_emails)

    cluster.auth.redeem_login(newer)

    with pytest.raises(Unauthorized):
        cluster.auth.redeem_login(older)


def test_concurrent_redemptions_open_exactly_one_session(system, cluster, config, login_emails):
    token = ask_for_link(cluster, login_emails)

    calls = [cluster.auth.redeem_login.call_async(token) for _ in range(6)]
    outcomes = []
    for call in calls:
        try:
            outcomes.append(call.result()["session"]["id"])
        except Unauthorized:
            outcomes.append("refused")

    assert outcomes.count("refused") == 5
    assert len(rows(config["AUTH_DB_URL"], "sessions")) == 1


def test_session_resolves_to_an_identity_until_logout(system, cluster, clock, login_emails):
    session_token = cluster.auth.redeem_login(ask_for_link(cluster, login_emails))["session_token"]

    identity = cluster.auth.get_session(session_token)
    assert identity["email"] == BUYER
    assert identity["merchant_id"] is None

    assert cluster.auth.end_session(session_token) == {"ended": True}
    with pytest.raises(Unauthorized) as refused:
        cluster.auth.get_session(session_token)
    assert refused.value.code == "session_expired"
    assert cluster.auth.end_session(session_token) == {"ended": True}


def test_activity_keeps_a_session_alive_until_the_absolute_timeout(system, cluster, clock, login_emails):
    session_token = cluster.auth.redeem_login(ask_for_link(cluster, login_emails))["session_token"]

    for seconds in (IDLE - 1, 2 * IDLE - 2, ABSOLUTE - 1):
        clock(T0 + timedelta(seconds=seconds))
        assert cluster.auth.get_session(session_token)["email"] == BUYER

    clock(T0 + timedelta(seconds=ABSOLUTE))
    with pytest.raises(Unauthorized) as refused:
        cluster.auth.get_session(session_token)
    assert refused.value.code == "session_expired"


def test_idle_session_expires(system, cluster, clock, login_emails):
    session_token = cluster.auth.redeem_login(ask_for_link(cluster, login_emails))["session_token"]
    clock(T0 + timedelta(seconds=IDLE))

    with pytest.raises(Unauthorized) as refused:
        cluster.auth.get_session(session_token)
    assert refused.value.code == "session_expired"


def test_unknown_session_token_is_refused(system, cluster):
    with pytest.raises(Unauthorized) as refused:
        cluster.auth.get_session("never-issued")
    assert refused.value.code == "session_expired"


def test_without_subscriptions_the_request_is_unavailable(start_notifications, start_auth, cluster, login_emails):
    start_notifications()
    start_auth()

    with pytest.raises(ServiceUnavailable):
        cluster.auth.request_login_link(BUYER)
    assert login_emails == []


def test_without_notifications_the_answer_is_unchanged_and_no_secret_is_logged(
    start_subscriptions, start_auth, cluster, config, caplog,
):
    start_subscriptions()
    start_auth()

    with caplog.at_level(logging.WARNING, logger="services.auth"):
        assert cluster.auth.request_login_link(BUYER) == {"accepted": True}

    [request] = rows(config["AUTH_DB_URL"], "login_requests")
    [warning] = [record for record in caplog.records if record.name == "services.auth.service"]
    assert request["id"] in warning.getMessage()
    assert "token" not in warning.getMessage()
