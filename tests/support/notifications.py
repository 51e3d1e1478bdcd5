"""What the notifications tests share: small stand-ins for subscriptions and billing
that answer the enrichment RPCs, their data, events published to the source exchanges
as those services publish them, and a merchant's webhook receiver."""
import hashlib
import hmac
import json
import socket
import time
import uuid
from collections import deque

import eventlet
import eventlet.wsgi
from sqlalchemy.orm import sessionmaker

from services.common import clock
from services.common.db import UnitOfWork, make_engine
from services.common.errors import NotFound
from services.common.outbox import event_exchange
from services.common.rpc import rpc
from services.notifications import store
from support.publishing import publish_confirmed

MERCHANT_ID = "acme-cursos"
SENDER = "Portal do Cliente <portal@example.com>"
PORTAL = "https://portal.example.com"
ANA = "ana.souza@example.com"
BOB = "bob.smith@example.com"
# The cycle starts at noon in São Paulo (15:00 UTC).
CYCLE_START = "2026-05-04T15:00:00+00:00"
CYCLE_END = "2026-06-04T15:00:00+00:00"

MERCHANTS = {
    MERCHANT_ID: {
        "id": MERCHANT_ID, "name": "Acme Cursos Ltda", "brand_name": "Acme Cursos",
        "support_email": "ajuda@acme.example", "support_phone": "+55 11 4000-1234",
        "support_url": "https://acme.example/ajuda",
    },
}


def merchant_ref(merchant):
    """The merchant as subscriptions names it in a subscription's answer."""
    return {"id": merchant["id"], "name": merchant["name"], "brand_name": merchant["brand_name"], "support": {
        "email": merchant["support_email"], "phone": merchant["support_phone"], "url": merchant["support_url"]}}


SUBSCRIPTIONS = {
    "sub-ana": {
        "email": ANA,
        "view": {
            "id": "sub-ana", "merchant": merchant_ref(MERCHANTS[MERCHANT_ID]),
            "product_name": "Curso de Python", "plan_name": "Premium", "price_cents": 123456,
            "periodicity_months": 1, "status": "active", "cancel_reason": None,
            "cycle": {"number": 1, "start": CYCLE_START, "end": CYCLE_END},
            "next_charge_at": CYCLE_END,
            "payment_method": {"method": "credit_card", "card_brand": "visa", "card_last4": "4242"},
            "pending_plan_change": {
                "offer": {"id": "python-basico", "plan_name": "Básico", "price_cents": 4990},
                "status": "scheduled", "effective_at": CYCLE_END,
            },
        },
    },
    "sub-bob": {
        "email": BOB,
        "view": {
            "id": "sub-bob", "merchant": merchant_ref(MERCHANTS[MERCHANT_ID]),
            "product_name": "Python Course", "plan_name": "Premium", "price_cents": 9900,
            "periodicity_months": 12, "status": "canceled", "cancel_reason": "buyer",
            "cycle": {"number": 1, "start": CYCLE_START, "end": CYCLE_END}, "next_charge_at": None,
            "payment_method": {"method": "pix", "card_brand": None, "card_last4": None},
            "pending_plan_change": None, "locale": "en",
        },
    },
}
BOLETO_LINE = "00190000090123456789012345678901234560000010000"
PIX_CODE = "00020126580014BR.GOV.BCB.PIX0136123e4567-e12b-12d1-a456-4266554400005204000053039865802BR6304ABCD"


def order(code, amount_cents, method, status, subscription_id=None, installments=1, product_name="Curso de Python",
          **payment):
    return {
        "code": code, "merchant": {"id": MERCHANT_ID}, "product_name": product_name,
        "amount_cents": amount_cents, "installments": installments, "status": status,
        "created_at": "2026-05-04T15:00:00+00:00",
        "paid_at": "2026-05-04T15:00:00+00:00" if status == "paid" else None,
        "payment": {"method": method, **payment}, "subscription_id": subscription_id,
    }


ORDERS = {
    "PED-AAAAPAGO": order("PED-AAAAPAGO", 123456, "credit_card", "paid", installments=3,
                          card_brand="visa", card_last4="4242"),
    "PED-BBBBLETO": order("PED-BBBBLETO", 123456, "boleto", "pending",
                          boleto_line=BOLETO_LINE, boleto_due_date="2026-05-07"),
    "PED-CCCCCPIX": order("PED-CCCCCPIX", 123456, "pix", "pending", pix_code=PIX_CODE),
    "PED-DDDDRECU": order("PED-DDDDRECU", 123456, "credit_card", "refused", "sub-ana",
                          card_brand="visa", card_last4="4242"),
    "PED-EEEERENO": order("PED-EEEERENO", 123456, "credit_card", "paid", "sub-ana",
                          card_brand="visa", card_last4="4242"),
    # Bob's, in English: his renewal and a refused charge.
    "PED-BOBRENEW": order("PED-BOBRENEW", 9900, "pix", "paid", "sub-bob", product_name="Python Course"),
    "PED-BOBFAILD": order("PED-BOBFAILD", 9900, "credit_card", "refused", "sub-bob", product_name="Python Course",
                          card_brand="visa", card_last4="4242"),
}
# Who notifications said it was asking for, call by call, and which merchants it asked about.
identities_seen = []
merchants_asked = []


class FakeSubscriptions:
    """Answers as subscriptions does: a buyer's subscription only to that buyer."""

    name = "subscriptions"

    @rpc
    def get_merchant(self, merchant_id):
        merchants_asked.append(merchant_id)
        if merchant_id not in MERCHANTS:
            raise NotFound("Merchant not found.")
        return MERCHANTS[merchant_id]

    @rpc
    def get_subscription(self, identity, subscription_id):
        identities_seen.append(identity)
        found = SUBSCRIPTIONS.get(subscription_id)
        if found is None or found["email"] != identity["email"]:
            raise NotFound("Subscription not found.")
        return found["view"]


class FakeBilling:
    """Answers as billing does; any other `PED-` code is a paid card order of R$ 10,00."""

    name = "billing"

    @rpc
    def get_order(self, identity, code):
        identities_seen.append(identity)
        return ORDERS.get(code) or order(code, 1000, "credit_card", "paid", card_brand="visa", card_last4="4242")


def envelope(event_type, merchant_id=MERCHANT_ID, **data):
    return {
        "event_id": str(uuid.uuid4()), "type": event_type, "version": 1,
        "occurred_at": "2026-05-04T15:00:00+00:00", "merchant_id": merchant_id, "data": data,
    }


def publish(amqp_uri, source, *envelopes):
    """Publish as `source`'s outbox relay does: its exchange, the type as routing key,
    confirmed."""
    publish_confirmed(amqp_uri, event_exchange(source), *envelopes)


class Receiver:
    """A merchant's webhook endpoint: keeps every request, answers from a script (with
    `headers`, e.g. a redirect's Location), over TLS when given a server `tls` context."""

    def __init__(self, statuses, port=0, headers=(), tls=None):
        self.requests = []
        self._statuses = deque(statuses)
        self._headers = list(headers)
        self._socket = eventlet.listen(("127.0.0.1", port))
        self.port = self._socket.getsockname()[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}/hooks/portal"
        self._server = eventlet.spawn(
            eventlet.wsgi.server, tls.wrap_socket(self._socket, server_side=True) if tls else self._socket,
            self._app, log_output=False,
        )

    def _app(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        headers = {key[5:].replace("_", "-").title(): value for key, value in environ.items() if key.startswith("HTTP_")}
        headers["Content-Type"] = environ.get("CONTENT_TYPE")
        self.requests.append({"headers": headers, "body": body, "path": environ["PATH_INFO"]})
        status = self._statuses.popleft() if len(self._statuses) > 1 else self._statuses[0]
        start_response(f"{status} Whatever", [("Content-Type", "application/json"), *self._headers])
        return [json.dumps({"received": True}).encode()]

    def close(self):
        self._server.kill()
        self._socket.close()


class Dns:
    """A resolver for `outbound.Destinations` that a test controls: it knows only the
    names it was given (name -> addresses), may be told a new answer at any time (DNS
    rebinding), and keeps every name it was asked."""

    def __init__(self, names):
        self.names = dict(names)
        self.asked = []

    def __call__(self, host, port):
        self.asked.append(host)
        if host not in self.names:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(self.names[host])


def save_endpoints_unchecked(db_url, merchant_id, *urls):
    """Make `urls` the merchant's endpoints straight in notifications' database, as
    endpoints saved before the rules on where webhooks may go were."""
    engine = make_engine(db_url)
    try:
        with UnitOfWork(sessionmaker(bind=engine, expire_on_commit=False)).transaction() as session:
            store.put_webhook_settings(
                session, merchant_id, [{"url": url, "event_types": []} for url in urls], False, clock.now(),
            )
    finally:
        engine.dispose()


def merchant_verifies(secret, header, body, tolerance_seconds=300):
    """What a merchant's server does with a webhook: the README's example, verbatim."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    timestamp, signature = parts.get("t", ""), parts.get("v1", "")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > tolerance_seconds:
        return False  # unsigned, or too old: a replay
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


class ScriptedSmtpServer:
    """A mail server that answers every RCPT TO with `rcpt_reply` (change it at will),
    to see what notifications does with "550 no such user" or "451 try later"."""

    def __init__(self, rcpt_reply):
        self.rcpt_reply = rcpt_reply
        self.accepted = 0
        self._socket = eventlet.listen(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self._server = eventlet.spawn(self._serve)

    def _serve(self):
        while True:
            connection, _ = self._socket.accept()
            eventlet.spawn_n(self._session, connection)

    def _session(self, connection):
        stream = connection.makefile("rwb")

        def reply(line):
            stream.write(line.encode() + b"\r\n")
            stream.flush()

        reply("220 scripted ESMTP")
        for line in iter(stream.readline, b""):
            verb = line[:4].upper()
            if verb == b"RCPT":
                reply(self.rcpt_reply)
            elif verb == b"DATA":
                reply("354 go ahead")
                for data_line in iter(stream.readline, b""):
                    if data_line == b".\r\n":
                        break
                self.accepted += 1
                reply("250 accepted")
            elif verb == b"QUIT":
                reply("221 bye")
                break
            else:  # EHLO, MAIL FROM, RSET, NOOP
                reply("250 ok")
        connection.close()

    def close(self):
        self._server.kill()
        self._socket.close()
