"""The sandbox processor: a deterministic test mode that needs no account anywhere.

Test cards (any future expiry, any 3–4 digit CVV) behave by their number:
4242 4242 4242 4242 approves; 4000 0000 0000 0002 is declined (`card_declined`);
4000 0000 0000 9995 is declined (`insufficient_funds`); 4000 0000 0000 0119 is
charged and then the answer is lost (a network error), so only a lookup by key finds
it paid. A card charged after its expiry month is declined (`expired_card`). Any other valid card approves, and so does a token the sandbox did not issue
(those of imported or demo orders). Boletos come with valid check digits; pix codes
are valid BR Codes. Nothing is ever paid for real. A boleto comes with its barcode but
no PDF: the portal prints a page of its own for it.
"""
import hashlib
import secrets
from contextlib import contextmanager

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from services.billing import domain
from services.billing.models import sandbox as tables
from services.billing.processors import (
    CardRefused, CardToken, Processor, ProcessorCharge, ProcessorUnavailable, boleto, brcode,
)
from services.common import clock
from services.common.i18n import N_
from services.common.db import make_engine

APPROVE = "approve"
NETWORK_ERROR = "network_error"
EXPIRED = "expired_card"
DECLINES = ("card_declined", "insufficient_funds", EXPIRED)
TEST_CARDS = {
    "4000000000000002": "card_declined",
    "4000000000009995": "insufficient_funds",
    "4000000000000119": NETWORK_ERROR,
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

    def refund(self, key):
        self._move(key, "paid", "refunded", refunded_at=clock.now())
        charge = self.find_charge(key)
        if charge is None or charge.status != "refunded":
            raise ValueError("Only a paid charge can be refunded.")
        return charge

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
