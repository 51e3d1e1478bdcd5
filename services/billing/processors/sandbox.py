"""The sandbox processor: a deterministic test mode that needs no account anywhere.

Test cards (any future expiry, any 3–4 digit CVV) behave by their number:
4242 4242 4242 4242 approves; 4000 0000 0000 0002 is declined (`card_declined`);
4000 0000 0000 9995 is declined (`insufficient_funds`); 4000 0000 0000 0119 is
charged and then the answer is lost (a network error), so only a lookup by key finds
it paid. 4000 0000 0000 5126 approves, but every refund of its charges fails. A card
charged after its expiry month is declined (`expired_card`). Any other valid card
approves, and so does a token the sandbox did not issue (those of imported or demo orders).

Refunds, full or partial (never more than the charge in all), are answered pending,
as real processors answer them, and settled by the time anyone asks about them again
(the reconciler, a callback): done, or failed for the card above. A boleto's refund is
`pending_manual`: it goes to a bank account the sandbox does not know. Boletos come with valid check digits; pix codes
are valid BR Codes. Nothing is ever paid for real. A boleto comes with its barcode but
no PDF: the portal prints a page of its own for it.
"""
import hashlib
import secrets
from contextlib import contextmanager

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from services.billing import domain
from services.billing.models import sandbox as tables
from services.billing.processors import (
    CardRefused, CardToken, Processor, ProcessorCharge, ProcessorRefund, ProcessorUnavailable, boleto, brcode,
)
from services.common import clock
from services.common.i18n import N_
from services.common.db import make_engine

APPROVE = "approve"
NETWORK_ERROR = "network_error"
REFUND_FAILS = "refund_fails"
EXPIRED = "expired_card"
DECLINES = ("card_declined", "insufficient_funds", EXPIRED)
TEST_CARDS = {
    "4000000000000002": "card_declined",
    "4000000000009995": "insufficient_funds",
    "4000000000000119": NETWORK_ERROR,
    "4000000000005126": REFUND_FAILS,
}
# A bank code no real bank has, so a sandbox boleto cannot be mistaken for one.
SANDBOX_BANK = "999"
SANDBOX_PIX_KEY = "00000000-0000-4000-8000-00000000a5b0"
SANDBOX_CITY = "SAO PAULO"


def _digest(key):
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def free_field(key):
    """The boleto's 25-digit "nosso número" block, derived from the key."""
    return f"{int(_digest(key), 16) % 10**boleto.FREE_FIELD_DIGITS:025d}"


# The digest's hex digits spelled as letters: a txid of digits and letters could hold a
# 13-digit run that passes for a card number.
HEX_AS_LETTERS = str.maketrans("0123456789abcdef", "ABCDEFGHIJKLMNOP")


def txid(key):
    return ("SBX" + _digest(key).translate(HEX_AS_LETTERS))[:brcode.MAX_TXID]


def _as_charge(row):
    return ProcessorCharge(
        key=row.idempotency_key, status=row.status, reference=row.reference,
        amount_cents=row.amount_cents, decline_reason=row.decline_reason,
        boleto_line=row.boleto_line, boleto_due_date=row.boleto_due_date,
        boleto_barcode=row.boleto_line and boleto.barcode_from_line(row.boleto_line), pix_code=row.pix_code,
    )


def _as_refund(row):
    return ProcessorRefund(
        key=row.idempotency_key, status=row.status, amount_cents=row.amount_cents, reference=row.reference,
        failure_reason=row.failure_reason,
    )


class SandboxProcessor(Processor):
    name = "sandbox"

    def __init__(self, config):
        # Its own connections, as a processor across the network would be.
        self.engine = make_engine(config["BILLING_DB_URL"])

    def close(self):
        self.engine.dispose()

    @contextmanager
    def _connection(self, write=False):
        """A connection to the sandbox's tables (a transaction when `write`). A database
        that does not answer is this processor not answering: the outcome is unknown,
        as after a network error, and billing looks the charge up by its key later."""
        try:
            with (self.engine.begin() if write else self.engine.connect()) as connection:
                yield connection
        except OperationalError as error:
            raise ProcessorUnavailable(f"sandbox: its database did not answer ({type(error.orig).__name__})") from error

    def tokenize(self, card, holder=None, remote_ip=None, email=None):
        if not domain.luhn_is_valid(card.number):
            raise CardRefused("number", N_("Número de cartão inválido."))
        brand = domain.card_brand(card.number)
        if brand is None:
            raise CardRefused("number", N_("Bandeira de cartão não aceita."))
        token = CardToken(
            token=f"tok_sbx_{secrets.token_urlsafe(18)}", brand=brand, last4=card.number[-4:],
            exp_month=card.exp_month, exp_year=card.exp_year,
        )
        with self._connection(write=True) as connection:
            connection.execute(insert(tables.tokens).values(
                token=token.token, brand=token.brand, last4=token.last4,
                exp_month=token.exp_month, exp_year=token.exp_year,
                behaviour=TEST_CARDS.get(card.number, APPROVE), created_at=clock.now(),
            ))
        return token

    def charge_card(self, key, token, amount_cents, installments, customer_ref=None):
        existing = self.find_charge(key)
        if existing is not None:
            return existing
        behaviour = self._behaviour(token)
        declined = behaviour in DECLINES
        charge, created = self._record(
            key, kind="card", token=token, amount_cents=amount_cents, installments=installments,
            status="refused" if declined else "paid", decline_reason=behaviour if declined else None,
            paid_at=None if declined else clock.now(),
        )
        if created and behaviour == NETWORK_ERROR:
            raise ProcessorUnavailable("sandbox: connection reset after the charge was made")
        return charge

    def _behaviour(self, token):
        """How the token's card answers a charge today (a card past its expiry is declined)."""
        with self._connection() as connection:
            row = connection.execute(select(tables.tokens).where(tables.tokens.c.token == token)).one_or_none()
        if row is None:
            return APPROVE
        today = clock.now().date()
        if (row.exp_year, row.exp_month) < (today.year, today.month):
            return EXPIRED
        return row.behaviour

    def create_boleto(self, key, amount_cents, due_date, merchant_id, payer):
        code = boleto.barcode(SANDBOX_BANK, amount_cents, due_date, free_field(key))
        charge, _ = self._record(
            key, kind="boleto", amount_cents=amount_cents, status="pending",
            boleto_line=boleto.line_from_barcode(code), boleto_due_date=due_date,
        )
        return charge

    def create_pix(self, key, amount_cents, merchant_id, payer):
        code = brcode.pix_code(SANDBOX_PIX_KEY, amount_cents, merchant_id, SANDBOX_CITY, txid(key))
        charge, _ = self._record(key, kind="pix", amount_cents=amount_cents, status="pending", pix_code=code)
        return charge

    def find_charge(self, key):
        with self._connection() as connection:
            row = connection.execute(
                select(tables.charges).where(tables.charges.c.idempotency_key == key)
            ).one_or_none()
        return _as_charge(row) if row else None

    def refund(self, key, refund_key, amount_cents):
        try:
            with self._connection(write=True) as connection:
                row = self._refund_row(connection, refund_key) or self._new_refund(
                    connection, key, refund_key, amount_cents)
        except IntegrityError:  # a concurrent call with the same key got there first
            with self._connection() as connection:
                row = self._refund_row(connection, refund_key)
        return _as_refund(row)

    def _new_refund(self, connection, key, refund_key, amount_cents):
        charge = connection.execute(
            select(tables.charges).where(tables.charges.c.idempotency_key == key)).one_or_none()
        given = self._refunded_cents(connection, key, tables.refunds.c.status != "failed")
        status, reason = "pending", None
        if charge is None or charge.status != "paid":
            status, reason = "failed", "not_refundable"
        elif given + amount_cents > charge.amount_cents:
            status, reason = "failed", "exceeds_charge"
        elif charge.kind == "boleto":
            status = "pending_manual"
        return connection.execute(insert(tables.refunds).values(
            idempotency_key=refund_key, charge_key=key, reference=f"rf_sbx_{secrets.token_urlsafe(18)}",
            amount_cents=amount_cents, status=status, failure_reason=reason, created_at=clock.now(),
            settled_at=clock.now() if status == "failed" else None,
        ).returning(*tables.refunds.c)).one()

    def find_refund(self, key, refund_key, reference=None):
        with self._connection(write=True) as connection:
            row = self._refund_row(connection, refund_key)
            if row is None or row.charge_key != key:
                return None
            if row.status == "pending":
                self._settle_refund(connection, row)
                row = self._refund_row(connection, refund_key)
        return _as_refund(row)

    def _settle_refund(self, connection, row):
        """The bank's answer to a pending refund: failed for the card whose refunds
        fail, else done; the charge is refunded once its refunds add up to it."""
        charge = connection.execute(
            select(tables.charges).where(tables.charges.c.idempotency_key == row.charge_key)).one()
        behaviour = connection.execute(
            select(tables.tokens.c.behaviour).where(tables.tokens.c.token == charge.token)).scalar_one_or_none()
        fails = behaviour == REFUND_FAILS
        connection.execute(
            update(tables.refunds).where(tables.refunds.c.idempotency_key == row.idempotency_key)
            .values(status="failed" if fails else "done", failure_reason="refund_declined" if fails else None,
                    settled_at=clock.now())
        )
        if not fails and self._refunded_cents(connection, row.charge_key, tables.refunds.c.status == "done") \
                >= charge.amount_cents:
            connection.execute(
                update(tables.charges).where(tables.charges.c.idempotency_key == row.charge_key)
                .values(status="refunded", refunded_at=clock.now())
            )

    @staticmethod
    def _refund_row(connection, refund_key):
        return connection.execute(
            select(tables.refunds).where(tables.refunds.c.idempotency_key == refund_key)).one_or_none()

    @staticmethod
    def _refunded_cents(connection, key, condition):
        return connection.execute(
            select(func.coalesce(func.sum(tables.refunds.c.amount_cents), 0))
            .where(tables.refunds.c.charge_key == key, condition)
        ).scalar_one()

    def pay(self, key):
        """Sandbox only: the buyer pays a pending boleto or pix (as a bank would report)."""
        self._move(key, "pending", "paid", paid_at=clock.now())
        return self.find_charge(key)

    def _record(self, key, **values):
        """Insert the charge under `key`: (charge, True), or — if a concurrent call got
        there first — (that call's charge, False)."""
        values.setdefault("installments", 1)
        try:
            with self._connection(write=True) as connection:
                row = connection.execute(insert(tables.charges).values(
                    reference=f"ch_sbx_{secrets.token_urlsafe(18)}", idempotency_key=key,
                    created_at=clock.now(), **values,
                ).returning(*tables.charges.c)).one()
        except IntegrityError:
            return self.find_charge(key), False
        return _as_charge(row), True

    def _move(self, key, from_status, to_status, **values):
        with self._connection(write=True) as connection:
            connection.execute(
                update(tables.charges)
                .where(tables.charges.c.idempotency_key == key, tables.charges.c.status == from_status)
                .values(status=to_status, **values)
            )
