"""The sandbox processor's own side: the tokens and charges a real processor would
keep on its servers.

They sit in billing's database only so that `make run` needs nothing else, under
the `sandbox_` prefix and written only by the sandbox adapter, through its own
connections: billing's code never reads them, as it could not read a real
processor's. No card number or security code is kept here either — a token
remembers only how its test card behaves.
"""
from types import SimpleNamespace

from sqlalchemy import Column, Date, Integer, String, Table, Text

from services.common.db import UTCDateTime


def sandbox_tables(metadata):
    tokens = Table(
        "sandbox_tokens",
        metadata,
        Column("token", String(64), primary_key=True),
        Column("brand", String(20), nullable=False),
        Column("last4", String(4), nullable=False),
        Column("exp_month", Integer, nullable=False),
        Column("exp_year", Integer, nullable=False),
        # approve | card_declined | insufficient_funds | network_error
        Column("behaviour", String(30), nullable=False),
        Column("created_at", UTCDateTime, nullable=False),
    )
    charges = Table(
        "sandbox_charges",
        metadata,
        Column("reference", String(40), primary_key=True),
        Column("idempotency_key", String(200), nullable=False, unique=True),
        # card | boleto | pix
        Column("kind", String(10), nullable=False),
        Column("token", String(200)),
        Column("amount_cents", Integer, nullable=False),
        Column("installments", Integer, nullable=False),
        Column("status", String(20), nullable=False),
        Column("decline_reason", String(40)),
        Column("boleto_line", String(47)),
        Column("boleto_due_date", Date),
        Column("pix_code", Text),
        Column("created_at", UTCDateTime, nullable=False),
        Column("paid_at", UTCDateTime),
        Column("refunded_at", UTCDateTime),
    )
    refunds = Table(
        "sandbox_refunds",
        metadata,
        Column("idempotency_key", String(200), primary_key=True),
        Column("charge_key", String(200), nullable=False, index=True),
        Column("reference", String(40), nullable=False, unique=True),
        Column("amount_cents", Integer, nullable=False),
        # pending | pending_manual | done | failed
        Column("status", String(20), nullable=False),
        Column("failure_reason", String(40)),
        Column("created_at", UTCDateTime, nullable=False),
        Column("settled_at", UTCDateTime),
    )
    return SimpleNamespace(tokens=tokens, charges=charges, refunds=refunds)
