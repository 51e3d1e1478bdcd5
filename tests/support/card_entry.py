"""A buyer typing a card into billing's form, and what the sandbox processor charged."""
from sqlalchemy import func, select

from services.billing.models import sandbox
from services.common.db import make_engine

# A CVV that no timestamp, amount or id of the suite contains as a digit run of its own.
TEST_CVV = "7319"
FUTURE_EXPIRY = "08/35"


def card_form(ticket, number, expiry=FUTURE_EXPIRY, security_code=TEST_CVV, holder_name="ANA SOUZA"):
    return {"ticket": ticket, "number": number, "expiry": expiry, "security_code": security_code,
            "holder_name": holder_name}


def sandbox_charges(billing_db_url, key):
    """How many times the sandbox charged under `key`."""
    engine = make_engine(billing_db_url)
    try:
        with engine.connect() as connection:
            return connection.execute(
                select(func.count()).select_from(sandbox.charges).where(sandbox.charges.c.idempotency_key == key)
            ).scalar_one()
    finally:
        engine.dispose()
