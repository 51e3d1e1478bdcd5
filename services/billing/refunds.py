"""Refunds, once per request key, as charges are made once per idempotency key.

A refund is first claimed: under the order's lock, what is left to refund is checked
and the refund inserted (unique by the requester's key) and committed. Only then is the
processor asked, outside any transaction, under the refund's own key. Processors answer
before the money moves, so a refund usually stays `pending` until the processor
confirms it — when the reconciler or a processor's callback asks again — and only then
does the order become `refunded` or `partially_refunded` (`order_refunded`), or the
refund `failed` (`refund_failed`). A lost answer leaves it `pending` for the reconciler,
which sends it again under the same key if the processor never heard of it.
"""
import logging
from dataclasses import dataclass

from services.billing import domain, store
from services.billing.models import Order, ProcessorAccount, Refund
from services.billing.processors import ProcessorRefund, ProcessorUnavailable
from services.common import clock
from services.common.errors import Conflict, NotFound, ValidationFailed

log = logging.getLogger(__name__)

RECONCILE_BATCH = 100
# Refunds whose amount counts against what was paid.
COMMITTED_STATUSES = ("pending", "pending_manual", "done")
FINAL_STATUSES = ("done", "failed")
EVENT_OF_STATUS = {"done": "order_refunded", "failed": "refund_failed"}
# Why a refund failed when the processor did not say.
DEFAULT_FAILURE = "refused_by_processor"


@dataclass(frozen=True)
class Claim:
    """A refund, what it is asked of the processor with (its order's charge key, the
    account) and whether this call claimed it (so asks)."""

    refund: Refund
    charge_key: str | None
    account: ProcessorAccount | None
    first: bool


def request_refund(db, events, processors, request):
    """The refund of `request` (merchant_id, code, request_key, amount_cents or None for
    all that is left, reason, actor): asked now if its key is new, else as first asked."""
    claim = db.retry_on_conflict(lambda session: _claim(session, request))
    if not claim.first or claim.refund.status != "pending":
        return claim.refund
    answer = _ask(processors, claim.account, claim.charge_key, claim.refund)
    return claim.refund if answer is None else settle(db, events, claim.refund.id, answer)


def _claim(session, request):
    merchant_id = request["merchant_id"]
    existing = store.refund_by_request_key(session, merchant_id, request["request_key"])
    order = store.merchant_order(session, merchant_id, request["code"], for_update=existing is None)
    if existing is not None:
        if existing.order_id != order.id or request["amount_cents"] not in (None, existing.amount_cents):
            raise ValidationFailed(
                "This key was used for another refund.", code="idempotency_key_reused",
                fields={"request_key": ["Used for another order or amount."]},
            )
        return Claim(existing, order.idempotency_key, None, first=False)
    committed = store.refunded_cents(session, order.id, COMMITTED_STATUSES)
    amount = domain.refund_amount(request["amount_cents"], order.amount_cents, committed)
    problems = domain.refund_problems(order.status, amount, order.amount_cents, committed)
    if "amount_cents" in problems:
        raise ValidationFailed("More than what is left to refund.", code="exceeds_paid", fields=problems)
    if problems:
        raise Conflict(problems["code"][0], code="not_refundable", fields=problems)
    # An order no processor of ours charged (a checkout's own) is refunded by its merchant.
    charged_here = order.idempotency_key is not None and order.processor is not None
    refund = store.add_refund(session, order, request, amount, "pending" if charged_here else "pending_manual",
                              clock.now())
    return Claim(refund, order.idempotency_key, store.order_account(session, order), first=True)


def _ask(processors, account, charge_key, refund):
    """The processor's answer to the refund, or None if it was lost (the refund stays
    pending for the reconciler)."""
    try:
        return processors.for_account(account).refund(charge_key, domain.refund_key(refund.id), refund.amount_cents)
    except ProcessorUnavailable as error:
        log.warning("refund %s: the processor's answer was lost (%s); the reconciler will look it up", refund.id, error)
        return None


def settle(db, events, refund_id, answer):
    """Apply the processor's `answer` to the refund, once: a final state is never left,
    and the order moves and the event is recorded with the refund, in one transaction."""
    with db.transaction() as session:
        return _settle_in(session, events, session.get(Refund, refund_id), answer)


def _settle_in(session, events, refund, answer):
    status = domain.settled_refund_status(refund.status, answer.status)
    if status is None:
        # Still pending: keep the processor's id of it, which some processors need to find it.
        if answer.reference and answer.reference != refund.processor_reference:
            store.move_refund(session, refund, refund.status, processor_reference=answer.reference)
        return refund
    # Refunds of one order settle one at a time: each sees the others' totals.
    order = session.get(Order, refund.order_id, with_for_update=True)
    values = {"processor_reference": answer.reference or refund.processor_reference}
    if status in FINAL_STATUSES:
        values["settled_at"] = clock.now()
    if status == "failed":
        values["failure_reason"] = answer.failure_reason or DEFAULT_FAILURE
    if not store.move_refund(session, refund, status, **values):
        return refund
    done = store.refunded_cents(session, order.id, ("done",))
    if status == "done":
        store.move_order(session, order, domain.refunded_status(order.amount_cents, done))
    event_type = EVENT_OF_STATUS.get(status)
    if event_type:
        events.record(session, event_type, order.merchant_id, refund_event_data(refund, order, done))
    return refund


def confirm_manual(db, events, merchant_id, code, refund_id):
    """The merchant gave a `pending_manual` refund's money back itself (a boleto's, a
    checkout's own charge): the refund is done, the order moves and `order_refunded` goes
    out, as when a processor confirms one. A repeat answers the refund as it stands."""
    with db.transaction() as session:
        order = store.merchant_order(session, merchant_id, code)
        refund = session.get(Refund, refund_id)
        if refund is None or refund.order_id != order.id:
            raise NotFound("Refund not found.")
        if refund.status == "done":
            return refund
        if refund.status != "pending_manual":
            raise Conflict("Only a refund left to the merchant is confirmed by the merchant.", code="not_manual",
                           fields={"refund_id": [f"This refund is {refund.status}: its processor settles it."]})
        return _settle_in(session, events, refund, ProcessorRefund(domain.refund_key(refund.id), "done",
                                                                   refund.amount_cents))


def refund_event_data(refund, order, refunded_cents):
    """The data of `order_refunded` and `refund_failed`."""
    return {
        "refund_id": refund.id,
        "order_id": order.id,
        "code": order.code,
        # Whom it concerns: notifications writes to this buyer and reads the order as them.
        "email": order.email,
        "subscription_id": order.subscription_id,
        "method": order.payment_method,
        "amount_cents": refund.amount_cents,
        "order_amount_cents": order.amount_cents,
        "refunded_cents": refunded_cents,
        "order_status": order.status,
        "status": refund.status,
        "reason": refund.reason,
        "actor": refund.actor,
        "failure_reason": refund.failure_reason,
    }


def settle_pending_of(db, events, processors, order):
    """What a processor's callback about an order's payment asks for too: look its
    pending refunds up and settle them (a processor's look-up that does not answer is
    left for the reconciler) → the order as it then stands."""
    with db.transaction() as session:
        waiting = [refund for refund in store.order_refunds(session, [order.id])[order.id]
                   if refund.status == "pending"]
        account = store.order_account(session, order)
    for refund in waiting:
        try:
            answer = processors.for_account(account).find_refund(
                order.idempotency_key, domain.refund_key(refund.id), refund.processor_reference)
        except ProcessorUnavailable as error:
            log.warning("refund %s: the processor did not answer (%s); the reconciler will ask", refund.id, error)
            continue
        if answer is not None:
            settle(db, events, refund.id, answer)
    if not waiting:
        return order
    with db.transaction() as session:
        return session.get(Order, order.id)


def reconcile(db, events, processors):
    """Settle every refund whose outcome is unknown, by asking the processor it was
    asked of; send again, under its key, one the processor never heard of."""
    with db.transaction() as session:
        waiting = store.refunds_awaiting_processor(session, processors.name, RECONCILE_BATCH)
        orders = {order.id: order for order in store.orders_by_ids(session, [refund.order_id for refund in waiting])}
        accounts = store.accounts_of(session, account_ids=[refund.processor_account_id for refund in waiting])
    settled = 0
    for refund in waiting:
        charge_key, key = orders[refund.order_id].idempotency_key, domain.refund_key(refund.id)
        try:
            processor = processors.for_account(accounts.get(refund.processor_account_id))
            answer = processor.find_refund(charge_key, key, refund.processor_reference)
            action = domain.reconcile_action(refund.created_at, clock.now(), answer and answer.status)
            if action == "wait":
                continue
            if action == "resubmit":
                answer = processor.refund(charge_key, key, refund.amount_cents)
        except ProcessorUnavailable as error:
            log.warning("refund %s: the processor did not answer (%s); next round", refund.id, error)
            continue
        if settle(db, events, refund.id, answer).status != "pending":
            settled += 1
    return {"checked": len(waiting), "settled": settled}


def failed_refunds(db, merchant_id=None):
    """Failed refunds with their orders' codes, oldest first (for operators)."""
    with db.transaction() as session:
        failed = store.refunds_by_status(session, "failed", merchant_id)
        codes = {order.id: order.code for order in store.orders_by_ids(session, [refund.order_id for refund in failed])}
    return [(refund, codes[refund.order_id]) for refund in failed]
