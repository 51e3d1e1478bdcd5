"""Charging, exactly once per idempotency key.

A charge is first claimed: its order is inserted under the key (a unique column) and
committed, `order_created` with it. Only then is the processor asked, outside any
transaction, under the same key. Its answer settles the order — paid, refused, or
pending for a boleto/pix — with the event in the same transaction. No answer leaves
the order `pending_confirmation`; the reconciler asks the processor later by the
key, and never charges under another one.
"""
import logging
from dataclasses import dataclass

import eventlet

from services.billing import domain, store
from services.billing.models import Order, PaymentMethod, ProcessorAccount
from services.billing.processors import ProcessorUnavailable
from services.common import clock
from services.common.errors import Conflict, NotFound, ServiceUnavailable, ValidationFailed

log = logging.getLogger(__name__)

RECONCILE_BATCH = 100
# Charges of one batch sent to the processor at once.
PROCESSOR_CALLS_AT_ONCE = 8
# Payment data a processor's answer fills in on the order.
ANSWER_FIELDS = ("boleto_line", "boleto_due_date", "boleto_barcode", "boleto_pdf_url", "pix_code", "decline_reason")


def order_event_data(order, event_type, settled_at_charge=False):
    """The data of `order_created`, `order_paid` or `charge_failed`: a settlement says
    whether it was the answer to the charge request itself, a failure also why."""
    data = {
        "order_id": order.id,
        "code": order.code,
        # Whom it concerns: notifications writes to this buyer and reads the order as them.
        "email": order.email,
        "subscription_id": order.subscription_id,
        "cycle_number": order.cycle_number,
        "kind": order.kind,
        "idempotency_key": order.idempotency_key,
        "amount_cents": order.amount_cents,
        "status": order.status,
        "method": order.payment_method,
    }
    if event_type in domain.EVENT_OF_STATUS.values():
        data["settled_at_charge"] = settled_at_charge
    if event_type == "charge_failed":
        data["decline_reason"] = order.decline_reason
    return data


def announce_new_order(session, events, order):
    """`order_created`, and `order_paid` too for an order that is paid from the start."""
    for event_type in ("order_created", "order_paid") if order.status == "paid" else ("order_created",):
        events.record(session, event_type, order.merchant_id, order_event_data(order, event_type))


@dataclass(frozen=True)
class Claim:
    """A charge's order, what to send it with (its card, the account it goes through)
    and whether this call claimed it (so sends it)."""

    order: Order
    card: PaymentMethod | None
    account: ProcessorAccount | None
    first: bool


def charging_account(card, method, accounts, merchant_id):
    """The account a charge goes through: the one that issued its card; for boleto and
    pix the merchant's (None: the installation's processor)."""
    if method == "credit_card":
        return accounts.get(card.processor_account_id) if card and card.processor_account_id else None
    return accounts.get(merchant_id)


def _claim_all(session, events, processors, requests):
    """For each request: its `Claim`, the order of its key, inserted now with
    `order_created` if the key is new; or the refusal (`ValidationFailed`) of a card
    token not issued to that buyer, which writes nothing. A key twice in one list is
    one charge, claimed by its first request."""
    known = store.orders_by_keys(session, [request["idempotency_key"] for request in requests])
    cards = store.cards_by_token(session, [request["payment_token"] for request in requests if request["payment_token"]])
    accounts = store.accounts_of(
        session, merchant_ids=[request["merchant_id"] for request in requests],
        account_ids=[card.processor_account_id for card in cards.values() if card.processor_account_id],
    )
    now = clock.now()
    refusals, fresh = {}, {}
    for position, request in enumerate(requests):
        key, token = request["idempotency_key"], request["payment_token"]
        if key in known or key in fresh:
            continue
        card = cards.get(token) if token else None
        if token and (card is None or (card.merchant_id, card.email) != (request["merchant_id"], request["email"])):
            refusals[position] = ValidationFailed(
                "The card token was not issued to this buyer.",
                fields={"payment_token": ["Unknown for this buyer."]},
            )
            continue
        due_date = domain.boleto_due_date(request["due_at"], now) if request["method"] == "boleto" else None
        account = charging_account(card, request["method"], accounts, request["merchant_id"])
        fresh[key] = (request, card, due_date, account)
    for order in store.create_charge_orders(session, list(fresh.values()), processors.name) if fresh else []:
        announce_new_order(session, events, order)
        known[order.idempotency_key] = order
    claims, claimed = [], set()
    for position, request in enumerate(requests):
        key = request["idempotency_key"]
        if position in refusals:
            claims.append(refusals[position])
            continue
        first = key in fresh and key not in claimed
        claimed.add(key)
        _request, card, _due_date, account = fresh[key] if first else (None, None, None, None)
        claims.append(Claim(known[key], card, account, first))
    return claims


def charge(db, events, processors, request):
    """The order of `request`: charged now if this key is new, else as first charged."""
    [claim] = db.retry_on_conflict(lambda session: _claim_all(session, events, processors, [request]))
    if isinstance(claim, ValidationFailed):
        raise claim
    if not claim.first or claim.order.status != "pending_confirmation":
        return claim.order
    answer = _answer(processors, claim)
    return claim.order if answer is None else settle(db, events, claim.order.id, answer, at_charge=True)


def charge_batch(db, events, processors, requests):
    """What `charge` answers for each request, in order: its order, or the refusal
    (`PortalError`) of a request that cannot be charged, which leaves the others be.

    The new keys are claimed in one transaction and the processor's answers settled
    in one more, so a batch costs the database two commits, not two per charge. A
    repeated batch answers each key with its first order, as `charge` does.
    """
    claims = db.retry_on_conflict(lambda session: _claim_all(session, events, processors, requests))
    to_send = [claim for claim in claims
               if isinstance(claim, Claim) and claim.first and claim.order.status == "pending_confirmation"]
    # The processor is a network call away: several charges are under way at once.
    pool = eventlet.GreenPool(PROCESSOR_CALLS_AT_ONCE)
    sent = pool.imap(lambda claim: (claim.order.id, _answer(processors, claim)), to_send)
    answers = {order_id: answer for order_id, answer in sent if answer is not None}
    settled = {}
    if answers:
        with db.transaction() as session:
            settled = {order.id: _settle_in(session, events, order, answers[order.id], at_charge=True)
                       for order in store.orders_by_ids(session, list(answers))}
    return [claim if not isinstance(claim, Claim) else settled.get(claim.order.id, claim.order) for claim in claims]


def _answer(processors, claim):
    """The processor's answer to the order's charge, or None if it was lost (the order
    stays pending_confirmation for the reconciler)."""
    try:
        return _send(processors.for_account(claim.account), claim.order, claim.card)
    except ProcessorUnavailable as error:
        log.warning("order %s: the processor's answer was lost (%s); the reconciler will look it up",
                    claim.order.code, error)
        return None


def _send(processor, order, card):
    key = order.idempotency_key
    if order.payment_method == "credit_card":
        return processor.charge_card(
            key, card and card.token, order.amount_cents, order.installments, card and card.customer_ref,
        )
    payer = {"email": order.email, "name": order.buyer_name, "document": order.buyer_document,
             "phone": order.buyer_phone, "address": order.address}
    if order.payment_method == "boleto":
        return processor.create_boleto(key, order.amount_cents, order.boleto_due_date, order.merchant_id, payer)
    return processor.create_pix(key, order.amount_cents, order.merchant_id, payer)


def settle(db, events, order_id, answer, at_charge=False):
    """Apply the processor's `answer` to the order, once: the first settlement wins
    and records the event; later ones (a repeat, the reconciler, a callback) change
    nothing. `at_charge`: the answer is the one the charge's caller is being given."""
    with db.transaction() as session:
        return _settle_in(session, events, session.get(Order, order_id), answer, at_charge)


def _settle_in(session, events, order, answer, at_charge):
    status = domain.settled_status(order.status, answer.status)
    if status is None:
        return order
    values = {field: getattr(answer, field) for field in ANSWER_FIELDS if getattr(answer, field) is not None}
    if status == "paid":
        values["paid_at"] = clock.now()
    if store.move_order(session, order, status, processor_reference=answer.reference, **values):
        event_type = domain.EVENT_OF_STATUS.get(status)
        if event_type:
            events.record(session, event_type, order.merchant_id, order_event_data(order, event_type, at_charge))
    return order


def reconcile(db, events, processors):
    """Settle every order whose charge has an unknown outcome, by asking the processor
    (each order the one it was charged through)."""
    with db.transaction() as session:
        waiting = store.awaiting_confirmation(session, processors.name, RECONCILE_BATCH)
        cards = store.cards_by_ids(session, [order.payment_method_id for order in waiting if order.payment_method_id])
        accounts = store.accounts_of(session, account_ids=[order.processor_account_id for order in waiting])
    settled = 0
    for order in waiting:
        try:
            processor = processors.for_account(accounts.get(order.processor_account_id))
            answer = processor.find_charge(order.idempotency_key)
            action = domain.reconcile_action(order.created_at, clock.now(), answer and answer.status)
            if action == "wait":
                continue
            if action == "resubmit":
                answer = _send(processor, order, cards.get(order.payment_method_id))
        except ProcessorUnavailable as error:
            log.warning("order %s: the processor did not answer (%s); next round", order.code, error)
            continue
        if settle(db, events, order.id, answer).status != "pending_confirmation":
            settled += 1
    return {"checked": len(waiting), "settled": settled}


def settle_by_key(db, events, processors, idempotency_key, processor_name, account_id=None):
    """What a processor's callback asks for: look the charge up and settle its order.
    Only an order charged by `processor_name` (through the account `account_id`, for a
    processor of accounts) is looked up."""
    with db.transaction() as session:
        order = store.order_by_key(session, idempotency_key)
        account = store.order_account(session, order)
    if order is None or order.processor != processor_name or (account_id and order.processor_account_id != account_id):
        raise NotFound("No charge of this processor has that key.")
    processor = processors.for_account(account)
    try:
        answer = processor.find_charge(idempotency_key)
    except ProcessorUnavailable:
        # The callback is sent again; meanwhile the reconciler asks too.
        raise ServiceUnavailable("The processor did not answer; try again shortly.") from None
    if answer is None:
        raise NotFound("The processor has no charge under that key.")
    return settle(db, events, order.id, answer)


def pay_in_sandbox(db, events, processors, code):
    """The sandbox's "pay" button for a pending boleto or pix: its side is paid, then
    the order is settled as a callback would settle it. Paying again changes nothing."""
    with db.transaction() as session:
        order = store.order_by_code(session, code)
    if order is None or order.processor != "sandbox":
        raise NotFound("Order not found.")
    if order.payment_method == "credit_card" or order.status not in ("pending", "paid"):
        raise Conflict("Only a pending boleto or pix can be paid here.", code="not_payable")
    processors.sandbox().pay(order.idempotency_key)
    return settle_by_key(db, events, processors, order.idempotency_key, "sandbox")
