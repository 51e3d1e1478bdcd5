"""E-mails as the buyer gets them: text and HTML, pt-BR or English."""
import io
import re
from datetime import datetime, timezone

import pytest
import zxingcpp
from PIL import Image

from services.billing.processors import brcode
from services.notifications import domain, emails
from support import secret_scan

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


# -- e-mails about events

PORTAL = "https://portal.example.com"
RENEWAL = {
    "event_id": "e-1", "type": "subscription_renewed", "merchant_id": "acme-cursos",
    "occurred_at": "2026-05-04T12:00:00+00:00",
    "data": {"subscription_id": "sub-1", "email": BUYER, "order_code": "PED-ABCDEFGH", "amount_cents": 123456,
             # 02:00 UTC on the 5th is still the 4th in São Paulo
             "cycle_start": "2026-05-05T02:00:00+00:00", "cycle_end": "2026-06-05T02:00:00+00:00"},
}
SUBSCRIPTION = {
    "id": "sub-1", "product_name": "Curso de Python", "plan_name": "Premium", "price_cents": 123456,
    "periodicity_months": 1, "next_charge_at": "2026-06-05T02:00:00+00:00",
    "cycle": {"start": "2026-05-05T02:00:00+00:00", "end": "2026-06-05T02:00:00+00:00"},
    "payment_method": {"method": "credit_card", "card_brand": "visa", "card_last4": "4242"},
}
ORDER = {
    "code": "PED-ABCDEFGH", "product_name": "Curso de Python", "amount_cents": 123456, "installments": 1,
    "paid_at": "2026-05-04T12:00:00+00:00",
    "payment": {"method": "boleto", "boleto_line": "00190000090123456789012345678901234560000010000",
                "boleto_due_date": "2026-05-07", "pix_code": "00020126580014BR.GOV.BCB.PIX"},
}
MERCHANT = {"name": "Acme Cursos", "support_email": "ajuda@acme.example", "support_phone": "+55 11 4000-1234",
            "support_url": "https://acme.example/ajuda"}
KINDS = (
    "plan_changed", "plan_change_scheduled", "payment_method_changed", "cancellation_scheduled", "canceled",
    "renewed", "charge_failed", "past_due", "order_paid", "boleto_issued", "pix_issued",
)


def facts(**data):
    event = {**RENEWAL, "data": {**RENEWAL["data"], **data}}
    return domain.email_facts(event, SUBSCRIPTION, ORDER, MERCHANT, PORTAL)


def readable(text):
    # Babel puts a no-break space between "R$" and the amount, as it should.
    return text.replace("\xa0", " ")


@pytest.mark.parametrize("locale", domain.LOCALES)
@pytest.mark.parametrize("kind", KINDS)
def test_every_e_mail_renders_in_both_languages_with_the_merchant_and_its_support(kind, locale):
    rendered = emails.render(kind, locale, facts())

    assert rendered.subject and "\n" not in rendered.subject
    for body in (rendered.text, readable(rendered.html)):
        assert "Acme Cursos" in body
        assert "ajuda@acme.example" in body and "+55 11 4000-1234" in body and "https://acme.example/ajuda" in body
        assert "None" not in body
    assert f"<title>{rendered.subject}</title>" in rendered.html.replace("&#39;", "'")


def test_pt_br_money_and_dates_are_brazilian():
    rendered = emails.render("renewed", "pt_BR", facts())

    text = readable(rendered.text)
    assert rendered.subject == "Recibo: sua assinatura de Curso de Python foi renovada"
    assert "Valor pago: R$ 1.234,56" in text
    assert "Período: 04/05/2026 a 04/06/2026" in text
    assert "Próxima cobrança: 04/06/2026" in text
    assert f"{PORTAL}/assinaturas/sub-1" in text


def test_english_e_mail_for_an_english_speaking_buyer():
    rendered = emails.render("renewed", "en", facts())

    assert rendered.subject == "Receipt: your Curso de Python subscription was renewed"
    assert "Amount paid: R$1,234.56" in readable(rendered.text)


def test_charge_failed_links_to_the_payment_method_page_and_carries_no_login_secret():
    rendered = emails.render("charge_failed", "pt_BR", facts(decline_reason="insufficient_funds"))

    link = f"{PORTAL}/assinaturas/sub-1/forma-de-pagamento"
    assert link in rendered.text
    assert f'href="{link}"' in rendered.html
    assert "Alterar forma de pagamento" in rendered.html
    assert "saldo ou limite insuficiente" in rendered.text
    assert "token" not in rendered.text + rendered.html and "entrar?" not in rendered.text + rendered.html


def test_boleto_e_mail_shows_the_line_and_the_due_day_as_the_bank_counts_it():
    rendered = emails.render("boleto_issued", "pt_BR", facts())

    assert "00190.00009 01234.567890 12345.678901 2 34560000010000" in rendered.text
    assert "Vencimento: 07/05/2026" in rendered.text
    assert rendered.subject.replace("\xa0", " ") == "Seu boleto de R$ 1.234,56: pedido PED-ABCDEFGH"


PIX_CODE = brcode.pix_code("00000000-0000-4000-8000-00000000a5b0", 123456, "Acme Cursos", "Sao Paulo", "PEDABCDEFGH")


@pytest.mark.parametrize("locale", domain.LOCALES)
def test_the_pix_e_mail_shows_its_qr_as_an_inline_image_beside_the_code(locale):
    rendered = emails.render("pix_issued", locale, facts(method="pix") | {"pix_code": PIX_CODE})

    class Row:
        recipient, subject, message_id = BUYER, rendered.subject, "<fixed-id@example.com>"
        text_body, html_body, inline_qr_codes = rendered.text, rendered.html, rendered.inline_qr_codes

    message = emails.stored_email(SENDER, Row, NOW)
    # text | (HTML + the QR it shows): mail clients block data: images, not cid: ones.
    assert message.get_content_type() == "multipart/alternative"
    text_part, related = message.get_payload()
    assert text_part.get_content_type() == "text/plain" and related.get_content_type() == "multipart/related"
    html_part, image = related.get_payload()
    assert html_part.get_content_type() == "text/html" and image.get_content_type() == "image/png"
    content_id = image["Content-ID"].strip("<>")
    assert re.search(rf'<img src="cid:{re.escape(content_id)}" alt="[^"]+"', html_part.get_content())
    assert image.get_content_disposition() == "inline"
    [read] = zxingcpp.read_barcodes(Image.open(io.BytesIO(image.get_content())))
    assert read.text == PIX_CODE
    # The copy-paste code, as text, beside it in both parts.
    assert PIX_CODE in message.get_body(("plain",)).get_content()
    assert PIX_CODE in html_part.get_content()


def test_other_e_mails_carry_no_image():
    rendered = emails.render("boleto_issued", "pt_BR", facts())
    assert rendered.inline_qr_codes == {} and "cid:" not in rendered.html


def test_what_the_data_says_is_escaped_in_html():
    hostile = {**MERCHANT, "name": '<script>alert("x")</script>'}
    event = {**RENEWAL}
    rendered = emails.render("renewed", "pt_BR", domain.email_facts(event, SUBSCRIPTION, ORDER, hostile, PORTAL))

    assert "<script>" not in rendered.html
    assert "&lt;script&gt;" in rendered.html


def test_a_stored_e_mail_is_the_same_message_at_every_attempt():
    class Row:
        recipient, subject, message_id = BUYER, "Assunto", "<fixed-id@example.com>"
        text_body, html_body = "texto", "<p>html</p>"
        inline_qr_codes = None

    first = emails.stored_email(SENDER, Row, NOW)
    again = emails.stored_email(SENDER, Row, NOW)

    assert first["Message-ID"] == again["Message-ID"] == "<fixed-id@example.com>"
    assert first.get_body(("plain",)).get_content().strip() == "texto"


def test_message_ids_are_unique_and_hold_no_number_that_could_pass_for_a_card():
    ids = {emails.new_message_id(SENDER) for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"<[0-9a-f]{32}@example\.com>", message_id) for message_id in ids)
    assert [message_id for message_id in ids if secret_scan.card_numbers_in(message_id)] == []


@pytest.mark.parametrize("locale", domain.LOCALES)
@pytest.mark.parametrize("change", ["created", "updated"])
def test_the_owners_hear_of_a_processor_account_change_without_its_secret(locale, change):
    event = {"event_id": "e-2", "type": "processor_account_changed", "merchant_id": "acme-cursos",
             "occurred_at": "2026-05-04T12:00:00+00:00",
             "data": {"account_id": "a-1", "processor": "asaas", "environment": "production", "api_key_hint": "9f3a",
                      "change": change, "notify": ["dona@acme.example"]}}
    rendered = emails.render(domain.PROCESSOR_ACCOUNT_CHANGED, locale, domain.account_change_facts(event, MERCHANT, PORTAL))

    assert "Acme Cursos" in rendered.subject and "\n" not in rendered.subject
    for body in (rendered.text, rendered.html):
        assert "Asaas" in body and "…9f3a" in body and "None" not in body


@pytest.mark.parametrize("locale, subject, line", [
    ("pt_BR", "Reembolso confirmado: pedido PED-ABCDEFGH", "Total reembolsado do pedido: R$ 20,00 de R$ 49,90"),
    ("en", "Refund confirmed: order PED-ABCDEFGH", "Refunded in all: R$20.00 of R$49.90"),
])
def test_a_confirmed_refund_tells_the_buyer_this_amount_and_the_orders_total(locale, subject, line):
    event = {"event_id": "e-2", "type": "order_refunded", "merchant_id": "acme-cursos",
             "occurred_at": "2026-05-04T12:00:00+00:00",
             "data": {"code": "PED-ABCDEFGH", "email": BUYER, "subscription_id": None, "amount_cents": 2000,
                      "refunded_cents": 2000, "order_amount_cents": 4990, "method": "credit_card"}}
    assert domain.email_kinds("order_refunded", event["data"]) == ["order_refunded"]
    rendered = emails.render("order_refunded", locale, domain.email_facts(event, None, ORDER, MERCHANT, PORTAL))

    assert rendered.subject == subject
    assert line in readable(rendered.text) and line.split(": ")[1] in readable(rendered.html)
    for body in (rendered.text, rendered.html):
        assert "Acme Cursos" in body and "None" not in body and f"{PORTAL}/pedidos/PED-ABCDEFGH" in body
