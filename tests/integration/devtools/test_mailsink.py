"""End-to-end tests for the development SMTP sink (devtools/mailsink.py).

The sink runs as a subprocess (tests/support/mailsink.py): the root conftest
monkey-patches this test process with eventlet, while the sink relies on asyncio
and real threads.
"""

import email
import email.policy
import html
import signal
import smtplib
from email.message import EmailMessage

import pytest
import requests

from support.mailsink import running_mailsink

EXIT_TIMEOUT_SECONDS = 10

BUYER = "comprador@example.com"
LOGIN_LINK = "https://portal.example.com/entrar?token=" + "a1b2c3d4" * 8 + "&proximo=%2Fpedidos"
FIRST_SUBJECT = "Seu link de acesso — ação necessária"
SECOND_SUBJECT = "Pedido nº 42 confirmado: atenção à entrega"


@pytest.fixture
def sink(tmp_path):
    with running_mailsink(tmp_path / "mail") as running:
        yield running


def send(sink, message):
    with smtplib.SMTP(sink.smtp_host, sink.smtp_port, timeout=10) as client:
        client.send_message(message)


def get(sink, path):
    return requests.get(sink.base_url + path, timeout=10)


def login_message() -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Loja São João <nao-responda@example.com>"
    message["To"] = f"Conceição Araújo <{BUYER}>"
    message["Subject"] = FIRST_SUBJECT
    # Quoted-printable splits the long link across lines, so the sink must
    # decode the body before looking for links.
    message.set_content(
        f"Olá, Conceição!\n\nPara entrar, use o link: {LOGIN_LINK}.\n",
        cte="quoted-printable",
    )
    message.add_alternative(
        f'<p>Olá, Conceição! <a href="{html.escape(LOGIN_LINK)}">Entrar</a></p>',
        subtype="html",
    )
    return message


def order_message() -> EmailMessage:
    message = EmailMessage()
    message["From"] = "nao-responda@example.com"
    message["To"] = "outra.pessoa@example.com"
    message["Subject"] = SECOND_SUBJECT
    message.set_content("Seu pedido foi confirmado.\n")
    return message


def test_received_messages_are_stored_listed_and_rendered(sink):
    send(sink, login_message())

    stored_files = list(sink.mail_dir.glob("*.eml"))
    assert len(stored_files) == 1
    stored = email.message_from_bytes(stored_files[0].read_bytes(), policy=email.policy.default)
    assert stored["Subject"] == FIRST_SUBJECT

    [first] = sink.messages()
    assert first["id"] == stored_files[0].stem
    assert first["subject"] == FIRST_SUBJECT
    assert first["from"] == "Loja São João <nao-responda@example.com>"
    assert first["to"] == [BUYER]
    assert LOGIN_LINK in first["text"]
    assert "Entrar" in first["html"]
    assert first["links"] == [LOGIN_LINK]

    send(sink, order_message())

    assert [m["subject"] for m in sink.messages()] == [SECOND_SUBJECT, FIRST_SUBJECT]
    assert [m["subject"] for m in sink.messages(to=BUYER.upper())] == [FIRST_SUBJECT]
    assert sink.messages(to="ninguem@example.com") == []

    index = get(sink, "/")
    assert index.status_code == 200
    assert "Caixa de saída (desenvolvimento)" in index.text
    assert FIRST_SUBJECT in index.text
    assert SECOND_SUBJECT in index.text
    assert f'href="/messages/{first["id"]}"' in index.text

    page = get(sink, f"/messages/{first['id']}")
    assert page.status_code == 200
    assert f'<a href="{html.escape(LOGIN_LINK)}">' in page.text
    assert "<iframe sandbox srcdoc=" in page.text

    raw = get(sink, f"/messages/{first['id']}.eml")
    assert raw.status_code == 200
    assert raw.headers["Content-Type"].startswith("message/rfc822")
    assert raw.content == stored_files[0].read_bytes()


def test_an_inline_image_shows_in_the_message_page(sink):
    message = login_message()
    html_part = message.get_body(("html",))
    html_part.set_content('<p>Pague com pix</p><img src="cid:pix-qr@portal" alt="QR">', subtype="html")
    html_part.add_related(b"\x89PNG fake", maintype="image", subtype="png", cid="<pix-qr@portal>")
    send(sink, message)

    [summary] = sink.messages()
    page = get(sink, f"/messages/{summary['id']}")
    assert '<img src="data:image/png;base64,iVBORyBmYWtl" alt="QR">' in html.unescape(page.text)
    assert "cid:pix-qr@portal" in summary["html"]  # the JSON keeps the message as sent


@pytest.mark.parametrize(
    "message_id",
    [
        "..%2F..%2Fetc%2Fpasswd",
        "..%2F..%2Fetc%2Fpasswd.eml",
        "..%2Fsecret",
        "..%2Fsecret.eml",
        "%2E%2E",
        "..%5C..%5Cetc%5Cpasswd",
        "does-not-exist",
    ],
)
def test_unknown_or_escaping_ids_are_not_found(sink, message_id):
    # A real .eml file just outside the mail directory must stay unreachable.
    (sink.mail_dir.parent / "secret.eml").write_text("Subject: secret\n\nsegredo\n")
    response = get(sink, f"/messages/{message_id}")
    assert response.status_code == 404
    assert "segredo" not in response.text


def test_delete_removes_all_messages(sink):
    send(sink, login_message())
    send(sink, order_message())
    assert len(sink.messages()) == 2

    response = requests.delete(sink.base_url + "/api/messages", timeout=10)

    assert response.status_code == 204
    assert sink.messages() == []
    assert list(sink.mail_dir.glob("*.eml")) == []


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_stops_cleanly_on_signal(sink, stop_signal):
    sink.process.send_signal(stop_signal)

    assert sink.process.wait(timeout=EXIT_TIMEOUT_SECONDS) == 0
    assert "Traceback" not in sink.log()
