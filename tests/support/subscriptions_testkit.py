"""What the subscriptions tests share: a stand-in billing (in memory for the handler
tests, on the same broker for the service's), the moment they happen at, and small
waiting helpers.

`FakeBilling` is a real nameko service named "billing" answering the issue-4 contract
(`charge`, `charge_batch`, `orders_by_keys`, `register_card`, `get_payment_method`,
`issue_card_entry_ticket`) the way
each test tells it to through `LEDGER["current"]`: cards approved, refused or left unknown, boleto/pix
pending, a card it cannot use refused as billing refuses it. It keeps every charge request it
receives, so tests can count them.
"""
import json
import secrets
from datetime import datetime, timezone

import eventlet

from services.billing.card_entry import TICKET_BYTES
from services.common.errors import EXPECTED_ERRORS, NotFound, PortalError, ServiceUnavailable, ValidationFailed
from services.common.rpc import rpc
from services.common.schemas import SALE_CARD_FIELDS

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=timezone.utc)
ANA = "ana@example.com"
BRUNO = "bruno@example.com"
ANA_CARD = {"method": "credit_card", "card_brand": "visa", "card_last4": "4242", "card_exp": "08/2030",
            "token": "tok_ana_visa"}


def card_for(email, merchant_id="acme-cursos"):
    """A buyer's card at a merchant: Ana's at Acme, or one with a token of its own
    (billing keeps a token for the one buyer it was issued to)."""
    if (email, merchant_id) == (ANA, "acme-cursos"):
        return ANA_CARD
    return {**ANA_CARD, "token": f"tok_{merchant_id}_{email}"}


def identity(email=ANA, merchant_id=None):
    return {"email": email, "merchant_id": merchant_id, "session_id": "session-1"}


class Ledger:
    """What the fake billing answers and what it was asked."""

    def __init__(self):
        # paid, refused, pending_confirmation, or error (billing fails unexpectedly).
        self.card_answer = "paid"
        self.decline_reason = "insufficient_funds"
        self.orders = {}
        self.requests = []
        self.cards = {}
        # Card tokens billing refuses to charge, as it refuses a token not issued to the buyer.
        self.unusable_tokens = set()
        # True: a batch is charged, then its answer lost (the renewal job's transaction fails).
        self.lose_batch_answers = False
        self.tickets = []
        # Each card put on file, as subscriptions sent it.
        self.registrations = []
        # Set to an eventlet Event to hold every charge until it is sent.
        self.hold = None
        # Seconds each charge takes.
        self.delay = 0

    def charged(self, key_prefix=""):
        """The charge requests received, in order, whose key starts with `key_prefix`."""
        return [request for request in self.requests if request["idempotency_key"].startswith(key_prefix)]


LEDGER = {"current": Ledger()}


class InMemoryBilling:
    """billing as subscriptions' BillingPort sees it, answering from a `Ledger`: one
    order per idempotency key, cards answered as `card_answer` says, boleto/pix
    pending, a token in `unusable_tokens` refused as billing refuses a token not
    issued to the buyer. The handler tests use it directly; `FakeBilling` serves it on
    the broker."""

    def __init__(self, ledger):
        self.ledger = ledger

    def with_timeout(self, seconds):
        return self

    def charge(self, request):
        ledger = self.ledger
        ledger.requests.append(request)
        if ledger.hold is not None:
            ledger.hold.wait()
        eventlet.sleep(ledger.delay)
        key = request["idempotency_key"]
        if key in ledger.orders:
            return ledger.orders[key]
        if request["payment_token"] in ledger.unusable_tokens:
            raise ValidationFailed("The card token was not issued to this buyer.",
                                   fields={"payment_token": ["Unknown for this buyer."]})
        if request["amount_cents"] == 0:
            status = "paid"
        elif request["method"] == "credit_card":
            status = ledger.card_answer
        else:
            status = "pending"
        if status == "error":
            raise RuntimeError("billing failed while charging")
        payment = {"method": request["method"]}
        if request["method"] == "pix":
            payment["pix_code"] = "00020126pix-code"
        if request["method"] == "boleto":
            payment["boleto_line"] = "2379" + "0" * 43
        order = {
            "code": f"V{len(ledger.orders) + 1:07d}", "status": status, "amount_cents": request["amount_cents"],
            "installments": request["installments"], "payment": payment, "idempotency_key": key,
            "kind": request["kind"], "subscription_id": request["subscription_id"],
            "cycle_number": request["cycle_number"],
            "decline_reason": ledger.decline_reason if status == "refused" else None,
        }
        ledger.orders[key] = order
        return order

    def charge_batch(self, requests):
        """`charge` for each request, as billing answers a batch: a charge that fails
        is that answer's error, and the others are charged."""
        answers = []
        for request in requests:
            try:
                answers.append({"order": self.charge(request), "error": None})
            except RuntimeError as error:
                answers.append({"order": None, "error": {"code": "error", "message": str(error), "fields": {}}})
            except PortalError as refusal:
                answers.append({"order": None, "error": refusal.to_dict()})
        if self.ledger.lose_batch_answers:
            raise ServiceUnavailable("billing charged, but its answer was lost")
        return answers

    def orders_by_keys(self, idempotency_keys):
        orders = self.ledger.orders
        return {key: orders[key] for key in idempotency_keys if key in orders}

    def register_card(self, card):
        """Keeps the card of a subscription's intake, refusing one another buyer's (as
        billing does, under the names the sale gave the card)."""
        self.ledger.registrations.append(card)
        payment, owner = card["payment"], {"email": card["email"], "merchant_id": card["merchant_id"]}
        if "card" in payment:
            payment = {SALE_CARD_FIELDS[name]: value for name, value in payment["card"].items()}
        known = self.ledger.cards.setdefault(payment["token"], {
            **owner, "brand": payment["card_brand"], "last4": payment["card_last4"], "exp": payment["card_exp"],
        })
        if (known["email"], known["merchant_id"]) != (owner["email"], owner["merchant_id"]):
            refused = {"token": ["Belongs to another buyer."]}
            if "card" in card["payment"]:
                refused = {"card": {"card_ref": refused["token"]}}
            raise ValidationFailed("The card token belongs to another buyer.", fields={"payment": refused})

    def get_payment_method(self, identity, token):
        card = self.ledger.cards.get(token)
        if card is None or (card["email"], card["merchant_id"]) != (identity["email"], identity["merchant_id"]):
            raise NotFound("Payment method not found.")
        return {"token": token, "brand": card["brand"], "last4": card["last4"], "exp": card["exp"]}

    def issue_card_entry_ticket(self, request):
        """A new ticket each time, as billing's: a live secret the suite's scan knows."""
        self.ledger.tickets.append(request)
        ticket = secrets.token_urlsafe(TICKET_BYTES)
        return {"ticket": ticket, "form_url": f"http://billing.test/card?ticket={ticket}",
                "expires_at": "2026-03-15T12:10:00+00:00"}


class FakeBilling:
    """`InMemoryBilling` on the broker, as a service named "billing", answering from
    `LEDGER["current"]`."""

    name = "billing"

    @staticmethod
    def _billing():
        return InMemoryBilling(LEDGER["current"])

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def charge(self, request):
        return self._billing().charge(request)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def charge_batch(self, requests):
        return self._billing().charge_batch(requests)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def orders_by_keys(self, idempotency_keys):
        return self._billing().orders_by_keys(idempotency_keys)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def register_card(self, card):
        return self._billing().register_card(card)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def get_payment_method(self, identity, token):
        return self._billing().get_payment_method(identity, token)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def issue_card_entry_ticket(self, request):
        return self._billing().issue_card_entry_ticket(request)


def envelopes(queue, count, timeout=20):
    """The next `count` messages of a kombu SimpleQueue, acknowledged, as dicts."""
    found = []
    for _ in range(count):
        message = queue.get(timeout=timeout)
        message.ack()
        found.append(message.payload if isinstance(message.payload, dict) else json.loads(message.payload))
    return found
