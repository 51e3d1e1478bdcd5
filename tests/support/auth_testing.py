"""For auth's integration tests: what lies outside auth, replaced over the same bus by
small real nameko services (a `subscriptions` that knows a few merchants and buyers, a
`notifications` that records the login e-mails it was asked to send), the settings
they run with, and a look at auth's tables."""
import hashlib
import uuid
from datetime import datetime, timezone

from sqlalchemy import MetaData, select

from services.common.db import make_engine
from services.common.errors import NotFound
from services.common.rpc import rpc

PORTAL = "https://portal.example.com"
T0 = datetime(2026, 5, 4, 12, 0, tzinfo=timezone.utc)
SETTINGS = {
    "RPC_TIMEOUT": 1,
    "PORTAL_BASE_URL": PORTAL,
    "LOGIN_LINK_TTL_SECONDS": 600,
    "SESSION_IDLE_SECONDS": 1800,
    "SESSION_ABSOLUTE_SECONDS": 5000,
    "SSO_TICKET_TTL_SECONDS": 60,
    "LOGIN_RATE_LIMIT_PER_EMAIL": 5,
    "LOGIN_RATE_LIMIT_PER_ADDRESS": 30,
    "LOGIN_RATE_WINDOW_SECONDS": 900,
}

BUYER = "ana.souza@example.com"
BETA_BUYER = "bruno@example.com"
STRANGER = "ninguem@example.com"
ACME = "acme-cursos"
BETA = "beta-software"
ACME_ORIGIN = "https://acme.example.com"

MERCHANTS = {
    ACME: {"id": ACME, "name": "Acme Cursos LTDA", "brand_name": "Acme Cursos", "allowed_origins": [ACME_ORIGIN]},
    BETA: {"id": BETA, "name": "Beta Software", "brand_name": None, "allowed_origins": []},
}
# (merchant, buyer) pairs with purchases.
CUSTOMERS = {(ACME, BUYER), (BETA, BETA_BUYER)}


class FakeSubscriptions:
    name = "subscriptions"

    @rpc
    def customer_exists(self, email, merchant_id=None):
        return any(buyer == email and merchant_id in (None, merchant) for merchant, buyer in CUSTOMERS)

    @rpc(expected_exceptions=NotFound)
    def get_merchant(self, merchant_id):
        if merchant_id not in MERCHANTS:
            raise NotFound("Merchant not found.")
        return MERCHANTS[merchant_id]


def fake_notifications(sent, gate=None):
    """A notifications service appending each login e-mail to `sent`; with an eventlet
    Event as `gate`, it answers only once the test sends that event."""

    class FakeNotifications:
        name = "notifications"

        @rpc
        def send_login_email(self, email, link, code, expires_at):
            if gate is not None:
                gate.wait()
            sent.append({"email": email, "link": link, "code": code, "expires_at": expires_at})
            return {"status": "sent", "email_id": str(uuid.uuid4())}

    return FakeNotifications


def sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()


def rows(db_url, table_name):
    """Every row of one table, as dicts."""
    engine = make_engine(db_url)
    metadata = MetaData()
    metadata.reflect(engine, only=[table_name])
    try:
        with engine.connect() as connection:
            return [row._asdict() for row in connection.execute(select(metadata.tables[table_name]))]
    finally:
        engine.dispose()
