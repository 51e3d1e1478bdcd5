"""Login e-mails over the real bus, on a real database, to a real SMTP server (the
development sink): sent at once, tried again from memory while the server is away,
dropped once the link has expired, and never kept."""
from datetime import datetime, timedelta, timezone

import eventlet
import pytest
from services.common.rpc import ClusterRpcProxy

from services.common.clock import write_clock_file
from services.common.errors import ValidationFailed
from support.databases import every_stored_value
from support.mailsink import running_mailsink
from support.ports import free_ports
from support.waiting import wait_until

BUYER = "ana.souza@example.com"
LINK = "https://portal.example.com/entrar?token=q8Xw2n-Rk4_Tz0pL3mVb7cYd1eFg5hJi9kNo6sUa2Bc"
CODE = "042917"
T0 = datetime(2026, 5, 4, 12, 0, tzinfo=timezone.utc)
EXPIRES_AT = (T0 + timedelta(minutes=10)).isoformat()


@pytest.fixture
def clock_file(tmp_path, monkeypatch):
    path = tmp_path / "clock.json"
    monkeypatch.setenv("CLOCK_FILE", str(path))
    write_clock_file(path, frozen_at=T0)
    return path


@pytest.fixture(autouse=True)
def frozen_clock(clock_file):
    return clock_file


def send_login_email(config, expires_at=EXPIRES_AT, link=LINK):
    with ClusterRpcProxy(config, timeout=15) as cluster:
        return cluster.notifications.send_login_email(email=BUYER, link=link, code=CODE, expires_at=expires_at)


def list_outbox(config, **filters):
    with ClusterRpcProxy(config, timeout=15) as cluster:
        return cluster.notifications.list_outbox(**filters)


def assert_no_secret_kept(config):
    stored = every_stored_value(config["NOTIFICATIONS_DB_URL"])
    assert not [value for value in stored if LINK in value or "q8Xw2n" in value or CODE in value]


def test_login_email_is_delivered_and_leaves_no_secret_behind(sink, start_notifications, event_queue):
    sent = event_queue("notifications", "email_sent")
    config, _ = start_notifications(sink.smtp_port)

    answer = send_login_email(config)

    assert answer["status"] == "sent"
    [message] = sink.messages()
    assert message["to"] == [BUYER]
    assert message["from"] == "Portal do Cliente <portal@example.com>"
    assert message["subject"] == "Seu link de acesso ao Portal do Cliente"
    assert message["links"] == [LINK]
    assert CODE in message["text"] and CODE in message["html"]
    assert "O link expira em 10 minutos e só pode ser usado uma vez." in message["text"]
    assert "Acessar minhas compras" in message["html"]

    [row] = list_outbox(config)
    assert row["id"] == answer["email_id"]
    assert (row["status"], row["kind"], row["recipient"], row["attempts"]) == ("sent", "login_link", BUYER, 1)
    assert datetime.fromisoformat(row["sent_at"]) == T0
    assert_no_secret_kept(config)

    envelope = sent.get(timeout=10).payload
    assert envelope["type"] == "email_sent"
    assert envelope["data"] == {"email_id": answer["email_id"], "kind": "login_link", "recipient": BUYER}


def test_login_email_whose_link_has_expired_is_dropped(sink, start_notifications):
    config, _ = start_notifications(sink.smtp_port)

    answer = send_login_email(config, expires_at=T0.isoformat())

    assert answer["status"] == "dropped"
    assert sink.messages() == []
    [row] = list_outbox(config, status="dropped")
    assert row["id"] == answer["email_id"]
    assert row["attempts"] == 0
    assert row["sent_at"] is None
    assert list_outbox(config, status="sent") == []


def test_login_email_waits_in_memory_for_the_mail_server_and_goes_before_its_link_expires(
        start_notifications, event_queue, clock_file, tmp_path):
    smtp_port, http_port = free_ports(2)
    sent = event_queue("notifications", "email_sent")
    config, _ = start_notifications(smtp_port, LOGIN_EMAIL_RETRY_SECONDS=10)

    answer = send_login_email(config)

    assert answer["status"] == "queued"
    [row] = list_outbox(config)
    assert (row["status"], row["attempts"]) == ("queued", 1)
    assert row["last_error"]
    assert_no_secret_kept(config)

    with running_mailsink(tmp_path / "mail", smtp_port, http_port) as sink:
        write_clock_file(clock_file, frozen_at=T0 + timedelta(seconds=11))
        [message] = sink.wait_for_messages(1)
        [row] = wait_until(lambda: list_outbox(config, status="sent"), message="the login e-mail marked sent")

    assert message["links"] == [LINK]
    assert row["id"] == answer["email_id"] and row["attempts"] == 2
    assert sent.get(timeout=10).payload["data"]["email_id"] == answer["email_id"]
    assert_no_secret_kept(config)


def test_login_email_is_dropped_when_its_link_expires_before_the_mail_server_returns(
        start_notifications, clock_file, tmp_path):
    smtp_port, http_port = free_ports(2)
    config, _ = start_notifications(smtp_port, LOGIN_EMAIL_RETRY_SECONDS=10)
    answer = send_login_email(config)
    assert answer["status"] == "queued"

    write_clock_file(clock_file, frozen_at=T0 + timedelta(minutes=10))
    [row] = wait_until(lambda: list_outbox(config, status="dropped"), message="the login e-mail dropped")

    with running_mailsink(tmp_path / "mail", smtp_port, http_port) as sink:
        write_clock_file(clock_file, frozen_at=T0 + timedelta(minutes=11))
        eventlet.sleep(1)  # ten rounds of the sender: it has nothing left to send
        assert sink.messages() == []
    assert row["id"] == answer["email_id"]
    assert_no_secret_kept(config)


def test_invalid_command_is_refused_without_echoing_the_secrets(sink, start_notifications):
    config, _ = start_notifications(sink.smtp_port)

    with pytest.raises(ValidationFailed) as refused:
        send_login_email(config, expires_at="2026-05-04T12:10:00")  # no timezone

    assert set(refused.value.fields) == {"expires_at"}
    assert LINK not in str(refused.value.to_dict()) and CODE not in str(refused.value.to_dict())
    assert sink.messages() == []


def test_login_email_with_a_link_off_the_portal_is_refused_and_nothing_is_sent(sink, start_notifications):
    config, _ = start_notifications(sink.smtp_port)
    phishing = "https://portal.example.com.evil.example.net/entrar?token=q8Xw2n"

    with pytest.raises(ValidationFailed) as refused:
        send_login_email(config, link=phishing)

    assert set(refused.value.fields) == {"link"}
    assert phishing not in str(refused.value.to_dict())
    assert list_outbox(config) == []
    assert sink.messages() == []
