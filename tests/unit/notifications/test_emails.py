"""The login e-mail as the buyer gets it (pt-BR, text and HTML)."""
from datetime import datetime, timezone

from services.notifications import emails

SENDER = "Portal do Cliente <portal@example.com>"
BUYER = "ana.souza@example.com"
LINK = "https://portal.example.com/entrar?token=Zx-9_aB"
NOW = datetime(2026, 5, 4, 12, 0, tzinfo=timezone.utc)


def parts(message):
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    return text, html


def test_login_email_is_text_and_html_with_link_code_and_warnings():
    message = emails.login_email(SENDER, BUYER, LINK, "042917", 10, NOW)

    assert message.get_content_type() == "multipart/alternative"
    assert message["From"] == SENDER
    assert message["To"] == BUYER
    assert message["Subject"] == "Seu link de acesso ao Portal do Cliente"
    assert message["Message-ID"].endswith("@example.com>")
    text, html = parts(message)
    for body in (text, html):
        assert "042917" in body
        assert "Acessar minhas compras" in body
        assert "O link expira em 10 minutos e só pode ser usado uma vez." in body
        assert "Se você não pediu este acesso, ignore este e-mail." in body
    assert LINK in text
    assert f'href="{LINK}"' in html


def test_one_minute_left_is_said_in_the_singular():
    text, html = parts(emails.login_email(SENDER, BUYER, LINK, "042917", 1, NOW))

    assert "O link expira em 1 minuto e só" in text
    assert "O link expira em 1 minuto e só" in html


def test_html_escapes_what_it_is_given():
    link = 'https://portal.example.com/entrar?token=a&x="><script>'

    _, html = parts(emails.login_email(SENDER, BUYER, link, "042917", 10, NOW))

    assert "<script>" not in html
    assert 'href="https://portal.example.com/entrar?token=a&amp;x=&#34;&gt;&lt;script&gt;"' in html
