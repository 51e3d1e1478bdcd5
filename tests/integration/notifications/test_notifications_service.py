"""notifications over the real bus, on a real database, sending to a real SMTP server
(the development sink, started for each test)."""
from datetime import datetime, timedelta, timezone

import pytest
from nameko.events import event_handler
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing.services import entrypoint_waiter

from services.common.clock import write_clock_file
from services.common.errors import ValidationFailed
from services.notifications.service import NotificationsService
from support.databases import every_stored_value
from support.mailsink import free_ports, running_mailsink

BUYER = "ana.souza@example.com"
SENDER = "Portal do Cliente <portal@example.com>"
LINK = "https://portal.example.com/entrar?token=q8Xw2n-Rk4_Tz0pL3mVb7cYd1eFg5hJi9kNo6sUa2Bc"
CODE = "042917"
T0 = datetime(2026, 5, 4, 12, 0, tzinfo=timezone.utc)
EXPIRES_AT = (T0 + timedelta(minutes=10)).isoformat()


@pytest.fixture(autouse=True)
def clock(tmp_path, monkeypatch):
    path = tmp_path / "clock.json"
    monkeypatch.setenv("CLOCK_FILE", str(path))
    write_clock_file(path, frozen_at=T0)


@pytest.fixture
def sink(tmp_path):
    with running_mailsink(tmp_path / "mail") as running:
        yield running


@pytest.fixture
def start_notifications(service_config, container_factory):
    """Starts notifications sending to `smtp_port`; returns its config."""

    def start(smtp_port):
        config = service_config(
            "notifications", SMTP_HOST="127.0.0.1", SMTP_PORT=smtp_port, SMTP_TIMEOUT=5, MAIL_FROM=SENDER,
        )
        container_factory(NotificationsService, config).start()
        return config

    return start


@pytest.fixture
def event_listener(container_factory):
    """A service on the bus that hears notifications' e-mail events."""

    class EmailEventListener:
        name = "email_event_listener"

        @event_handler("notifications", "email_sent")
        def on_email_sent(self, envelope):
            return envelope

        @event_handler("notifications", "email_failed")
        def on_email_failed(self, envelope):
            return envelope

    def start(config):
        container = container_factory(EmailEventListener, config)
        container.start()
        return container

    return start


def send_login_email(config, expires_at=EXPIRES_AT):
    with ClusterRpcProxy(config, timeout=15) as cluster:
        return cluster.notifications.send_login_email(email=BUYER, link=LINK, code=CODE, expires_at=expires_at)


def list_outbox(config, **filters):
    with ClusterRpcProxy(config, timeout=15) as cluster:
        return cluster.notifications.list_outbox(**filters)


def test_login_email_is_delivered_and_leaves_no_secret_behind(sink, start_notifications, event_listener):
    config = start_notifications(sink.smtp_port)
    listener = event_listener(config)

    with entrypoint_waiter(listener, "on_email_sent", timeout=10) as event:
        answer = send_login_email(config)

    assert answer["status"] == "sent"
    [message] = sink.messages()
    assert message["to"] == [BUYER]
    assert message["from"] == SENDER
    assert message["subject"] == "Seu link de acesso ao Portal do Cliente"
    assert message["links"] == [LINK]
    assert CODE in message["text"] and CODE in message["html"]
    assert "O link expira em 10 minutos e só pode ser usado uma vez." in message["text"]
    assert "Acessar minhas compras" in message["html"]

    [row] = list_outbox(config)
    assert row["id"] == answer["email_id"]
    assert row["status"] == "sent"
    assert row["kind"] == "login_link"
    assert row["recipient"] == BUYER
    assert row["attempts"] == 1
    assert datetime.fromisoformat(row["sent_at"]) == T0
    stored = every_stored_value(config["NOTIFICATIONS_DB_URL"])
    assert not [value for value in stored if LINK in value or "q8Xw2n" in value or value == CODE]

    envelope = event.get()
    assert envelope["type"] == "email_sent"
    assert envelope["data"] == {"email_id": answer["email_id"], "kind": "login_link", "recipient": BUYER}


def test_login_email_whose_link_has_expired_is_dropped(sink, start_notifications):
    config = start_notifications(sink.smtp_port)

    answer = send_login_email(config, expires_at=T0.isoformat())

    assert answer["status"] == "dropped"
    assert sink.messages() == []
    [row] = list_outbox(config, status="dropped")
    assert row["id"] == answer["email_id"]
    assert row["attempts"] == 0
    assert row["sent_at"] is None
    assert list_outbox(config, status="sent") == []


def test_unreachable_smtp_server_is_a_failed_answer_not_an_error(start_notifications, event_listener):
    [closed_port] = free_ports(1)
    config = start_notifications(closed_port)
    listener = event_listener(config)

    with entrypoint_waiter(listener, "on_email_failed", timeout=10) as event:
        answer = send_login_email(config)

    assert answer["status"] == "failed"
    [row] = list_outbox(config)
    assert row["status"] == "failed"
    assert row["attempts"] == 1
    assert row["last_error"]
    stored = every_stored_value(config["NOTIFICATIONS_DB_URL"])
    assert not [value for value in stored if LINK in value or "q8Xw2n" in value or value == CODE]

    envelope = event.get()
    assert envelope["data"] == {
        "email_id": answer["email_id"], "kind": "login_link", "recipient": BUYER, "error": row["last_error"],
    }


def test_invalid_command_is_refused_without_echoing_the_secrets(sink, start_notifications):
    config = start_notifications(sink.smtp_port)

    with pytest.raises(ValidationFailed) as refused:
        send_login_email(config, expires_at="2026-05-04T12:10:00")  # no timezone

    assert set(refused.value.fields) == {"expires_at"}
    assert LINK not in str(refused.value.to_dict()) and CODE not in str(refused.value.to_dict())
    assert sink.messages() == []
