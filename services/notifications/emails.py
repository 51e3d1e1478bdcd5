"""What an e-mail says (Jinja2 templates) and how it leaves (SMTP, at once)."""
import smtplib
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from nameko.extensions import DependencyProvider

LOGIN_LINK = "login_link"
LOGIN_SUBJECT = "Seu link de acesso ao Portal do Cliente"

TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)


def login_email(sender, recipient, link, code, minutes, sent_at):
    """The login e-mail: a plain-text part and an HTML part with the same content."""
    context = {"link": link, "code": code, "minutes": minutes}
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = LOGIN_SUBJECT
    message["Date"] = format_datetime(sent_at)
    message["Message-ID"] = make_msgid(domain=parseaddr(sender)[1].rpartition("@")[2] or None)
    # Quoted-printable keeps the link readable in the raw message.
    message.set_content(TEMPLATES.get_template(f"{LOGIN_LINK}.txt").render(context), cte="quoted-printable")
    message.add_alternative(
        TEMPLATES.get_template(f"{LOGIN_LINK}.html").render(context), subtype="html", cte="quoted-printable",
    )
    return message


class SmtpMailer:
    def __init__(self, host, port, timeout, sender):
        self.host = host
        self.port = port
        self.timeout = timeout
        self.sender = sender

    def send(self, message):
        """Hand `message` to the SMTP server; raises smtplib.SMTPException or OSError."""
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
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
