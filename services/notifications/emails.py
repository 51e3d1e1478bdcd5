"""What an e-mail says (Jinja2 templates, per locale) and how it leaves (SMTP).

Every e-mail is a plain-text part and an HTML part with the same content. An event's
e-mail is rendered once, when its event arrives, and stored; sending builds the
message from the stored row, so every attempt carries the same Message-ID.
"""
import smtplib
import socket
import uuid
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context, select_autoescape
from nameko.extensions import DependencyProvider

from services.common import formatting, payment_codes
from services.notifications import domain
from services.notifications.domain import LOGIN_LINK

LOGIN_SUBJECT = "Seu link de acesso ao Portal do Cliente"

BABEL_LOCALES = {"pt_BR": "pt_BR", "en": "en"}


@pass_context
def _money(context, cents):
    # An amount the event did not carry is left out, not shown as zero.
    return "" if cents is None else formatting.money(cents, locale=BABEL_LOCALES[context["locale"]])


@pass_context
def _date(context, value):
    return formatting.date(value, locale=BABEL_LOCALES[context["locale"]])


TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
)
TEMPLATES.filters.update(money=_money, date=_date, boleto_line=payment_codes.boleto_line_display)


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str
    # Content-ID → the text of a QR code the HTML shows as `cid:<Content-ID>`.
    inline_qr_codes: dict = field(default_factory=dict)


def render(kind, locale, context):
    """Subject, text and HTML of an e-mail `kind` in `locale` (`templates/<locale>/`)."""
    qr_codes = domain.inline_qr_codes(kind, context)
    context = {**context, "locale": locale, "qr_sources": {text: f"cid:{cid}" for cid, text in qr_codes.items()}}
    text_template = TEMPLATES.get_template(f"{locale}/{kind}.txt")
    # The subject is a block of the text template, so each e-mail's words stay together.
    subject = "".join(text_template.blocks["subject"](text_template.new_context(context))).strip()
    return RenderedEmail(
        subject=subject,
        text=text_template.render(context),
        html=TEMPLATES.get_template(f"{locale}/{kind}.html").render({**context, "subject": subject}),
        inline_qr_codes=qr_codes,
    )


def new_message_id(sender):
    # Random hex, not make_msgid's long decimal number: kept in logs and the database, a
    # 19-digit run would now and then pass for a card number.
    domain = parseaddr(sender)[1].rpartition("@")[2] or socket.getfqdn()
    return f"<{uuid.uuid4().hex}@{domain}>"


def _message(sender, recipient, subject, message_id, text, html, sent_at, inline_qr_codes=None):
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = subject
    message["Date"] = format_datetime(sent_at)
    message["Message-ID"] = message_id
    # Tells auto-responders and mail rules that no person is writing.
    message["Auto-Submitted"] = "auto-generated"
    # Quoted-printable keeps links readable in the raw message.
    message.set_content(text, cte="quoted-printable")
    message.add_alternative(html, subtype="html", cte="quoted-printable")
    # Each QR beside the HTML in multipart/related, which its `cid:` names.
    html_part = message.get_body(("html",))
    for content_id, text in (inline_qr_codes or {}).items():
        html_part.add_related(
            payment_codes.pix_qr_png(text), maintype="image", subtype="png", cid=f"<{content_id}>",
            disposition="inline", filename=f"{content_id.partition('@')[0]}.png",
        )
    return message


def stored_email(sender, row, sent_at):
    """The message of a stored e-mail row, the same at every attempt."""
    return _message(sender, row.recipient, row.subject, row.message_id, row.text_body, row.html_body, sent_at,
                    row.inline_qr_codes)


def login_email(sender, recipient, link, code, minutes, sent_at):
    """The login e-mail: a plain-text part and an HTML part with the same content."""
    context = {"link": link, "code": code, "minutes": minutes}
    return _message(
        sender, recipient, LOGIN_SUBJECT, new_message_id(sender),
        TEMPLATES.get_template(f"{LOGIN_LINK}.txt").render(context),
        TEMPLATES.get_template(f"{LOGIN_LINK}.html").render(context),
        sent_at,
    )


class SmtpMailer:
    def __init__(self, host, port, timeout, sender):
        self.host = host
        self.port = port
        self.timeout = timeout
        self.sender = sender

    def connect(self):
        """An open SMTP connection (close it with `quit()`); every wait has the timeout."""
        return smtplib.SMTP(self.host, self.port, timeout=self.timeout)

    def send(self, message):
        """Hand `message` to the SMTP server; raises smtplib.SMTPException or OSError."""
        with self.connect() as smtp:
            smtp.send_message(message)


class Mailer(DependencyProvider):
    """nameko dependency: an `SmtpMailer` configured from SMTP_* and MAIL_FROM."""

    def setup(self):
        config = self.container.config
        self.mailer = SmtpMailer(
            config["SMTP_HOST"], int(config["SMTP_PORT"]), float(config["SMTP_TIMEOUT"]), config["MAIL_FROM"],
        )

    def get_dependency(self, worker_ctx):
        return self.mailer
