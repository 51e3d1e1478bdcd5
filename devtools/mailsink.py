"""Development SMTP sink: accepts every message and keeps it for inspection.

Local development only, never production. Services send mail here instead of
to a real relay; each message is stored verbatim as an ``.eml`` file and shown
on a small web page so a developer can click, for example, a buyer's magic
login link. ``/api/messages`` exposes the same data as JSON for end-to-end
tests.

Run with ``python -m devtools.mailsink --help``.
"""

import argparse
import base64
import email
import email.policy
import html
import json
import logging
import os
import re
import signal
import sys
import tempfile
import threading
import uuid
from datetime import datetime, timezone
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from pathlib import Path

from aiosmtpd.controller import Controller
from jinja2 import Environment, FileSystemLoader
from markupsafe import Markup, escape
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

TEMPLATE_DIR = Path(__file__).with_name("templates")
MESSAGE_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]+")
URL_PATTERN = re.compile(r"https?://[^\s<>\"']+")
# Punctuation that usually ends the sentence around a URL, not the URL itself.
URL_TRAILING_PUNCTUATION = ".,;:!?)]}"


class Mailbox:
    """A directory of ``<id>.eml`` files whose names sort in arrival order."""

    def __init__(self, directory: Path):
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory.resolve()

    def store(self, raw: bytes) -> str:
        # A UTC timestamp prefix makes lexical order arrival order; the uuid
        # keeps names unique without any shared counter.
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
        message_id = f"{stamp}-{uuid.uuid4().hex}"
        # Write to a temporary name and rename, so the web side never reads
        # a half-written message.
        fd, temp_path = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as temp_file:
                temp_file.write(raw)
            os.replace(temp_path, self.directory / f"{message_id}.eml")
        except BaseException:
            os.unlink(temp_path)
            raise
        return message_id

    def ids_newest_first(self) -> list[str]:
        return sorted((path.stem for path in self.directory.glob("*.eml")), reverse=True)

    def path_of(self, message_id: str) -> Path | None:
        """Return the file for ``message_id``, or None if invalid or absent."""
        if not MESSAGE_ID_PATTERN.fullmatch(message_id):
            return None
        path = (self.directory / f"{message_id}.eml").resolve()
        # The pattern still admits "..", and the file could be a symlink:
        # only serve files that really live in the mailbox directory.
        if path.parent != self.directory or not path.is_file():
            return None
        return path

    def clear(self) -> None:
        for path in self.directory.glob("*.eml"):
            path.unlink(missing_ok=True)


def parse_message(path: Path) -> EmailMessage:
    with path.open("rb") as message_file:
        return email.message_from_binary_file(message_file, policy=email.policy.default)


def decoded_body(message: EmailMessage, subtype: str) -> str | None:
    part = message.get_body(preferencelist=(subtype,))
    if part is None:
        return None
    try:
        return part.get_content()
    except (LookupError, UnicodeError):
        # Unknown or wrong charset: a readable approximation beats an error page.
        return part.get_payload(decode=True).decode("utf-8", errors="replace")


def with_inline_images(message: EmailMessage, html_body: str | None) -> str | None:
    """The HTML with each `cid:` image it names made a `data:` URI of that part, as a
    mail client shows it (the page's frame cannot reach the message's parts)."""
    if not html_body:
        return html_body
    for part in message.walk():
        content_id = (part["Content-ID"] or "").strip("<> ")
        if content_id and part.get_content_maintype() == "image":
            encoded = base64.b64encode(part.get_payload(decode=True)).decode("ascii")
            html_body = html_body.replace(f"cid:{content_id}", f"data:{part.get_content_type()};base64,{encoded}")
    return html_body


def url_spans(text: str):
    """Yield ``(url, start, end)`` for each http(s) URL in ``text``."""
    for match in URL_PATTERN.finditer(text):
        url = match.group().rstrip(URL_TRAILING_PUNCTUATION)
        yield url, match.start(), match.start() + len(url)


def linkify(text: str) -> Markup:
    """Escape ``text`` for HTML, turning its URLs into clickable links."""
    pieces = []
    position = 0
    for url, start, end in url_spans(text):
        pieces.append(escape(text[position:start]))
        pieces.append(Markup('<a href="{0}">{0}</a>').format(url))
        position = end
    pieces.append(escape(text[position:]))
    return Markup("").join(pieces)


def summarize(message_id: str, path: Path, message: EmailMessage) -> dict:
    """The JSON view of a stored message, also used by the templates."""
    text = decoded_body(message, "plain")
    html_body = decoded_body(message, "html")
    if text is not None:
        link_source = text
    else:
        # In HTML, "&" inside href values is written "&amp;".
        link_source = html.unescape(html_body or "")
    recipient_headers = message.get_all("to", []) + message.get_all("cc", [])
    received = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
    return {
        "id": message_id,
        "from": str(message.get("from", "")),
        "to": [address.addr_spec for header in recipient_headers for address in header.addresses],
        "subject": str(message.get("subject", "")),
        "date": received.isoformat(timespec="seconds"),
        "text": text,
        "html": html_body,
        # dict.fromkeys drops repeated links but keeps their order.
        "links": list(dict.fromkeys(url for url, _, _ in url_spans(link_source))),
    }


class StoringHandler:
    """aiosmtpd handler that accepts every message and stores it."""

    def __init__(self, mailbox: Mailbox):
        self.mailbox = mailbox

    async def handle_DATA(self, server, session, envelope):
        # original_content is the DATA exactly as the client sent it.
        raw = envelope.original_content
        self.mailbox.store(raw)
        subject = BytesHeaderParser(policy=email.policy.default).parsebytes(raw).get("subject", "")
        recipients = ", ".join(envelope.rcpt_tos)
        print(f"mailsink: to {recipients}: {subject}", file=sys.stderr, flush=True)
        return "250 Message accepted for delivery"


class WebApp:
    """WSGI application for the message list, message pages and JSON API."""

    def __init__(self, mailbox: Mailbox):
        self.mailbox = mailbox
        self.templates = Environment(
            loader=FileSystemLoader(TEMPLATE_DIR),
            autoescape=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.filters["linkify"] = linkify
        self.url_map = Map(
            [
                Rule("/", endpoint=self.index, methods=["GET"]),
                Rule("/healthz", endpoint=self.health, methods=["GET"]),
                Rule("/messages/<message_id>.eml", endpoint=self.raw_message, methods=["GET"]),
                Rule("/messages/<message_id>", endpoint=self.message_page, methods=["GET"]),
                Rule("/api/messages", endpoint=self.list_messages, methods=["GET"]),
                Rule("/api/messages", endpoint=self.delete_messages, methods=["DELETE"]),
            ]
        )

    def __call__(self, environ, start_response):
        request = Request(environ)
        try:
            endpoint, arguments = self.url_map.bind_to_environ(environ).match()
            response = endpoint(request, **arguments)
        except HTTPException as error:
            response = error
        return response(environ, start_response)

    def summaries(self) -> list[dict]:
        summaries = []
        for message_id in self.mailbox.ids_newest_first():
            path = self.mailbox.path_of(message_id)
            if path is None:  # a stray file name, or deleted since listing
                continue
            try:
                summaries.append(summarize(message_id, path, parse_message(path)))
            except FileNotFoundError:  # deleted while being read
                continue
        return summaries

    def existing_path(self, message_id: str) -> Path:
        path = self.mailbox.path_of(message_id)
        if path is None:
            raise NotFound()
        return path

    def render(self, template_name: str, **context) -> Response:
        html_page = self.templates.get_template(template_name).render(**context)
        return Response(html_page, mimetype="text/html")

    def index(self, request):
        return self.render("mailsink_index.html", messages=self.summaries())

    def health(self, request):
        return Response("ok", mimetype="text/plain")

    def message_page(self, request, message_id):
        path = self.existing_path(message_id)
        message = parse_message(path)
        headers = [(name, str(value)) for name, value in message.items()]
        summary = summarize(message_id, path, message)
        summary["html"] = with_inline_images(message, summary["html"])
        return self.render("mailsink_message.html", message=summary, headers=headers)

    def raw_message(self, request, message_id):
        return Response(self.existing_path(message_id).read_bytes(), mimetype="message/rfc822")

    def list_messages(self, request):
        summaries = self.summaries()
        wanted_recipient = request.args.get("to")
        if wanted_recipient:
            wanted_recipient = wanted_recipient.lower()
            summaries = [
                summary
                for summary in summaries
                if wanted_recipient in (address.lower() for address in summary["to"])
            ]
        return Response(json.dumps(summaries, ensure_ascii=False), mimetype="application/json")

    def delete_messages(self, request):
        self.mailbox.clear()
        return Response(status=204)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.mailsink",
        description="Development SMTP server that keeps every message and shows it on a web page.",
    )
    # argparse applies ``type`` to string defaults too, so a bad environment
    # value is reported like a bad flag instead of crashing.
    parser.add_argument("--smtp-host", default="127.0.0.1")
    parser.add_argument("--smtp-port", type=int, default=os.environ.get("SMTP_PORT") or "1025")
    parser.add_argument("--http-host", default="127.0.0.1")
    parser.add_argument(
        "--http-port", type=int, default=os.environ.get("MAIL_SINK_PORT") or "8025"
    )
    parser.add_argument("--dir", type=Path, default=os.environ.get("MAIL_DIR") or "var/mail")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)

    # Install handlers before anything listens, so an early signal still
    # shuts down cleanly instead of killing the process.
    stop_requested = threading.Event()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signal_number, lambda *_: stop_requested.set())

    # Per-request access logs would drown the one line per message;
    # request errors are logged at a higher level and still show.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    mailbox = Mailbox(args.dir)
    smtp = Controller(
        StoringHandler(mailbox),
        hostname=args.smtp_host,
        port=args.smtp_port,
        enable_SMTPUTF8=True,  # accept whatever a sender may try
    )
    try:
        web = make_server(args.http_host, args.http_port, WebApp(mailbox), threaded=True)
        smtp.start()
    except OSError as error:  # typically a port already in use
        print(f"mailsink: {error}", file=sys.stderr)
        return 1
    # Serve HTTP only once SMTP is up: a healthy /healthz means mail is accepted.
    web_thread = threading.Thread(target=web.serve_forever, name="mailsink-http", daemon=True)
    web_thread.start()
    print(
        f"mailsink: SMTP on {args.smtp_host}:{args.smtp_port}, "
        f"web on http://{args.http_host}:{web.server_port}/, "
        f"storing in {mailbox.directory}",
        flush=True,
    )

    stop_requested.wait()
    web.shutdown()
    web_thread.join()
    web.server_close()
    smtp.stop()
    print("mailsink: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
