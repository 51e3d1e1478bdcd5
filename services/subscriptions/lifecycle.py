"""Changes to a locked subscription, each recorded with its activity entry and event.

The buyer's operations (selfservice.py), billing's payment events and the renewal job
all change subscriptions through these functions, inside the caller's transaction:
the change, its activity entry and its event commit together or not at all. Charges
go through billing under a key derived from the operation, so running a step again
after a crash or a rollback asks billing about the same charge instead of charging twice.
"""
import logging
from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import eventlet
import eventlet.semaphore
from nameko.exceptions import RemoteError
from sqlalchemy.orm.exc import StaleDataError

from services.common.errors import PortalError
from services.subscriptions import domain, store

log = logging.getLogger(__name__)

AWAITING_PAYMENT = "awaiting_payment"


@dataclass
class Context:
    """What a change works with: the transaction, billing, the outbox and one "now"."""

    session: object
    billing: object
    events: object
    now: datetime
    # How long before a renewal its boleto/pix order is issued.
    issue_ahead: timedelta


def terms(offer):
    return domain.OfferTerms(offer.price_cents, offer.periodicity_months, offer.max_installments)


def charge(ctx, subscription, key, kind, amount_cents, cycle_number, product_name, installments=1, due_at=None,
           payment=None):
    """Ask billing to charge under `key` (a repeat of a key answers with its first order,
    whatever happened to it since), with `payment` (method, card token) or the
    subscription's own.

    Called before the transaction writes anything: on SQLite a worker holding the
    write lock must not wait on another service.
    """
    return ctx.billing.charge(charge_request(
        subscription, key, kind, amount_cents, cycle_number, product_name, installments, due_at, payment,
    ))


def charge_request(subscription, key, kind, amount_cents, cycle_number, product_name, installments=1, due_at=None,
                   payment=None):
    """What `charge` asks billing (see there)."""
    method, token = payment or (subscription.payment_method, subscription.payment_token)
    card = method == "credit_card"
    return {
        "idempotency_key": key,
        "merchant_id": subscription.merchant_id,
        "email": subscription.email,
        "subscription_id": subscription.id,
        "cycle_number": cycle_number,
        "kind": kind,
        "product_name": product_name,
        "amount_cents": amount_cents,
        "installments": installments if card else 1,
        "method": method,
        "payment_token": token if card else None,
        "due_at": None if card or due_at is None else due_at.isoformat(),
    }


def restart_renewals(ctx, subscription):
    """A fresh renewal schedule after the cycle changed: charged next when it ends."""
    subscription.charge_attempts = 0
    subscription.first_failed_at = None
    subscription.waiting_charge_method = None
    subscription.next_charge_at = subscription.cycle_end
    subscription.renewal_run_at = domain.renewal_run_at(
        subscription.payment_method, subscription.cycle_end, ctx.issue_ahead,
    )


def _refresh_offers(ctx, subscription):
    # The offer relationships are read-only views of the key columns just written.
    ctx.session.flush()
    ctx.session.expire(subscription, ["offer", "pending_offer"])


# -- plan change

def schedule_plan_change(ctx, subscription, quote, actor):
    _set_pending(subscription, quote, domain.SCHEDULED)
    store.log_change(ctx.session, ctx.events, subscription, actor, "subscription_plan_change_scheduled", {
        "from_offer_id": subscription.offer_id, "to_offer_id": quote.to_offer_id,
        "takes_effect": domain.TAKES_EFFECT_AT_CYCLE_END, "effective_at": subscription.cycle_end,
        "order_code": None,
    })
    _refresh_offers(ctx, subscription)


def await_plan_payment(ctx, subscription, quote, order_code, actor):
    """An immediate change whose charge is not paid yet (boleto/pix, or a card answer
    still unknown): it applies when billing reports the order paid."""
    _set_pending(subscription, quote, AWAITING_PAYMENT)
    quote.order_code = order_code
    store.log_change(ctx.session, ctx.events, subscription, actor, "subscription_plan_change_scheduled", {
        "from_offer_id": subscription.offer_id, "to_offer_id": quote.to_offer_id,
        "takes_effect": domain.TAKES_EFFECT_ON_PAYMENT, "effective_at": None, "order_code": order_code,
    })
    _refresh_offers(ctx, subscription)


def _set_pending(subscription, quote, status):
    subscription.pending_offer_id = quote.to_offer_id
    subscription.pending_quote_id = quote.id
    subscription.pending_change_status = status
    quote.status = status


def apply_plan_change(ctx, subscription, quote, order_code, actor):
    """Put the subscription on the quote's offer, on the quoted terms."""
    new_offer = store.offer(ctx.session, subscription.merchant_id, quote.to_offer_id)
    from_offer_id = subscription.offer_id
    subscription.offer_id = new_offer.id
    subscription.balance_cents = quote.balance_cents
    if quote.kind == domain.NEW_CYCLE:
        # As quoted when charged at once; from the payment when it waited for a boleto/pix.
        start = quote.cycle_start if quote.takes_effect == domain.TAKES_EFFECT_NOW else ctx.now
        subscription.cycle_number += 1
        subscription.cycle_start = start
        subscription.cycle_end = domain.add_months(start, new_offer.periodicity_months)
        subscription.installments = quote.installments or 1
        restart_renewals(ctx, subscription)
    else:
        subscription.installments = min(subscription.installments, new_offer.max_installments)
    _clear_pending(subscription)
    quote.status = "applied"
    quote.order_code = order_code
    store.log_change(ctx.session, ctx.events, subscription, actor, "subscription_plan_changed", {
        "from_offer_id": from_offer_id, "to_offer_id": new_offer.id, "kind": quote.kind,
        "charge_cents": quote.charge_cents, "balance_cents": subscription.balance_cents, "order_code": order_code,
        "cycle_number": subscription.cycle_number, "cycle_start": subscription.cycle_start,
        "cycle_end": subscription.cycle_end,
    })
    _refresh_offers(ctx, subscription)


def drop_pending_change(ctx, subscription, actor, why):
    """Forget the pending plan change: undone, its charge failed, or it can no longer happen."""
    quote = store.quote_by_id(ctx.session, subscription.pending_quote_id)
    quote.status = "dropped"
    store.log_change(ctx.session, ctx.events, subscription, actor, "subscription_plan_change_dropped", {
        "to_offer_id": subscription.pending_offer_id, "why": why,
    })
    _clear_pending(subscription)
    _refresh_offers(ctx, subscription)


def _clear_pending(subscription):
    subscription.pending_offer_id = None
    subscription.pending_quote_id = None
    subscription.pending_change_status = None


def _is_current(quote, subscription):
    return (quote.from_offer_id, quote.cycle_number) == (subscription.offer_id, subscription.cycle_number)


def _locked_with_quote(ctx, quote):
    """The quote's subscription, locked, and the quote as committed since (an answer
    to the same charge may have been settled meanwhile)."""
    subscription = store.lock_subscription(ctx.session, quote.subscription_id)
    ctx.session.refresh(quote)
    return subscription


def settle_plan_change_payment(ctx, quote, order):
    """billing reports the charge of a plan change paid: apply it if it still can be."""
    subscription = _locked_with_quote(ctx, quote)
    if quote.status == "applied":
        return
    awaited = subscription.pending_quote_id == quote.id
    # An "open" quote was charged by a request that did not commit (e.g. it timed out).
    unconfirmed = quote.status == "open" and subscription.pending_change_status is None
    if subscription.status == "active" and _is_current(quote, subscription) and (awaited or unconfirmed):
        apply_plan_change(ctx, subscription, quote, order["code"], actor="system")
    else:
        record_payment_not_applied(ctx, subscription, order, "plan_change")


def settle_plan_change_failure(ctx, quote):
    """billing reports the charge of an awaited plan change failed: the change is off."""
    subscription = _locked_with_quote(ctx, quote)
    if quote.status == AWAITING_PAYMENT and subscription.pending_quote_id == quote.id:
        drop_pending_change(ctx, subscription, "system", why="charge_failed")


# -- payment method

def change_payment_method(ctx, subscription, method, card, actor):
    """Switch to `method` (`card`: billing's payment method view, for credit_card)."""
    subscription.payment_method = method
    subscription.card_brand = card and card["brand"]
    subscription.card_last4 = card and card["last4"]
    subscription.card_exp = card and card["exp"]
    subscription.payment_token = card and card["token"]
    if method != "credit_card":
        subscription.installments = 1
    if subscription.status == "active" and not subscription.cancel_at_period_end:
        subscription.renewal_run_at = domain.renewal_run_at(method, subscription.next_charge_at, ctx.issue_ahead)
    store.log_change(ctx.session, ctx.events, subscription, actor, "subscription_payment_method_changed", {
        "method": method, "card_brand": subscription.card_brand, "card_last4": subscription.card_last4,
        "card_exp": subscription.card_exp,
    })


# -- cancellation

def schedule_cancellation(ctx, subscription, feedback, comment, actor):
    if subscription.pending_change_status == domain.SCHEDULED:
        drop_pending_change(ctx, subscription, actor, why="canceled")
    subscription.cancel_at_period_end = True
    subscription.cancel_feedback = feedback
    subscription.cancel_comment = comment
    subscription.next_charge_at = None
    # Ended by the renewal job when the cycle ends; no order is issued ahead for it.
    subscription.renewal_run_at = subscription.cycle_end
    store.log_change(ctx.session, ctx.events, subscription, actor, "subscription_cancellation_scheduled", {
        "effective_at": subscription.cycle_end, "feedback": feedback, "comment": comment,
    })


def undo_cancellation(ctx, subscription, actor):
    subscription.cancel_at_period_end = False
    subscription.cancel_feedback = None
    subscription.cancel_comment = None
    subscription.next_charge_at = subscription.cycle_end
    subscription.renewal_run_at = domain.renewal_run_at(
        subscription.payment_method, subscription.cycle_end, ctx.issue_ahead,
    )
    store.log_change(ctx.session, ctx.events, subscription, actor, "subscription_cancellation_undone", {
        "next_charge_at": subscription.cycle_end,
    })


def end_subscription(ctx, subscription, reason, actor):
    """Canceled for good: by the buyer (now or at the period's end) or for non-payment."""
    if subscription.pending_change_status is not None:
        drop_pending_change(ctx, subscription, actor, why="canceled")
    subscription.status = domain.transition(subscription.status, "canceled")
    subscription.cancel_reason = reason
    subscription.cancel_at_period_end = False
    subscription.canceled_at = ctx.now
    subscription.next_charge_at = None
    subscription.renewal_run_at = None
    subscription.waiting_charge_method = None
    store.log_change(ctx.session, ctx.events, subscription, actor, "subscription_canceled", {
        "reason": reason, "feedback": subscription.cancel_feedback, "comment": subscription.cancel_comment,
        "canceled_at": ctx.now,
    })


# -- renewal

def charge_open_renewal(ctx, subscription, payment=None):
    """Charge the renewal still unpaid, or ask billing again about its waiting charge (a
    boleto/pix stays payable, so it is never issued twice), with `payment` (method,
    card token) or the subscription's own. Changes nothing but the attempt count; the
    caller acts on the order."""
    request, attempt = open_renewal_request(ctx, subscription, payment)
    order = ctx.billing.charge(request)
    subscription.charge_attempts = attempt
    return order


def open_renewal_request(ctx, subscription, payment=None):
    """The charge request of the renewal still unpaid and its attempt number, changing
    nothing (see `charge_open_renewal`)."""
    method = payment[0] if payment else subscription.payment_method
    offer = domain.next_cycle_offer(subscription)
    amount_cents, _ = domain.apply_balance(offer.price_cents, subscription.balance_cents)
    ask_again = subscription.waiting_charge_method == method
    attempt = subscription.charge_attempts if ask_again else subscription.charge_attempts + 1
    cycle_number = subscription.cycle_number + 1
    request = charge_request(
        subscription, domain.charge_key(subscription.id, cycle_number, attempt),
        "renewal" if attempt == 1 else "retry", amount_cents, cycle_number, offer.product_name,
        installments=subscription.installments, due_at=subscription.cycle_end, payment=payment,
    )
    return request, attempt


def settle_retry(ctx, subscription, order, actor):
    """"Update and pay now": the past-due renewal was charged at once with the new payment
    method; the retry schedule stays as it was."""
    outcome = domain.charge_outcome(order["status"])
    if outcome == domain.CHARGE_PAID:
        renew(ctx, subscription, order, actor)
    elif outcome == domain.CHARGE_WAITING:
        subscription.waiting_charge_method = subscription.payment_method
        store.log_activity(ctx.session, subscription, actor, "renewal_order_issued", _order_details(order))
    else:
        subscription.waiting_charge_method = None
        store.log_activity(ctx.session, subscription, actor, "payment_retry_failed", _order_details(order))


def renew(ctx, subscription, order, actor):
    """The renewal is paid: the next cycle starts where the last one ended, or at the
    renewal's first attempt if a whole cycle was missed (see `domain.renewed_cycle_start`);
    a scheduled plan change takes effect with it."""
    cycle_number = subscription.cycle_number + 1
    months = domain.next_cycle_offer(subscription).periodicity_months
    cycle_start = domain.renewed_cycle_start(subscription.cycle_end, months, subscription.first_failed_at or ctx.now)
    cycle_end = domain.add_months(cycle_start, months)
    if subscription.pending_change_status == domain.SCHEDULED:
        from_offer_id, quote = subscription.offer_id, store.quote_by_id(ctx.session, subscription.pending_quote_id)
        subscription.offer_id = subscription.pending_offer_id
        quote.status = "applied"
        _clear_pending(subscription)
        _refresh_offers(ctx, subscription)
        subscription.installments = min(subscription.installments, subscription.offer.max_installments)
        store.log_change(ctx.session, ctx.events, subscription, "system", "subscription_plan_changed", {
            "from_offer_id": from_offer_id, "to_offer_id": subscription.offer_id, "kind": domain.SCHEDULED,
            "charge_cents": 0, "balance_cents": subscription.balance_cents, "order_code": None,
            "cycle_number": cycle_number, "cycle_start": cycle_start, "cycle_end": cycle_end,
        })
    elif subscription.pending_change_status == AWAITING_PAYMENT:
        drop_pending_change(ctx, subscription, "system", why="not_paid")
    offer = subscription.offer
    _, subscription.balance_cents = domain.apply_balance(offer.price_cents, subscription.balance_cents)
    subscription.cycle_number = cycle_number
    subscription.cycle_start = cycle_start
    subscription.cycle_end = cycle_end
    if subscription.status != "active":
        subscription.status = domain.transition(subscription.status, "active")
    restart_renewals(ctx, subscription)
    store.log_change(ctx.session, ctx.events, subscription, actor, "subscription_renewed", {
        "offer_id": offer.id, "cycle_number": cycle_number, "cycle_start": cycle_start,
        "cycle_end": subscription.cycle_end, "amount_cents": order["amount_cents"], "order_code": order["code"],
    })


def settle_renewal_payment(ctx, subscription_id, cycle_number, order):
    """billing reports a renewal order paid (a boleto/pix, or a card settled late)."""
    subscription = store.lock_subscription(ctx.session, subscription_id)
    if cycle_number <= subscription.cycle_number:
        return  # already renewed
    payable = domain.is_open(subscription.status) and not subscription.cancel_at_period_end
    if payable and cycle_number == subscription.cycle_number + 1:
        renew(ctx, subscription, order, actor="system")
    else:
        record_payment_not_applied(ctx, subscription, order, "renewal")


def record_payment_not_applied(ctx, subscription, order, kind):
    """A paid order (of `kind`: renewal or plan_change) the subscription can no longer
    take: recorded for operators (`portalctl payments not-applied`) and sent to the
    merchant, who refunds it (the automatic refund comes later)."""
    store.log_change(ctx.session, ctx.events, subscription, "system", "subscription_payment_not_applied", {
        "order_code": order["code"], "amount_cents": order["amount_cents"], "kind": kind,
    })


def renewal_already_applied(session, subscription_id, cycle_number):
    """Whether the subscription is already in cycle `cycle_number` or later, so that a
    payment of that cycle's renewal changes nothing (cycles only move forward)."""
    current = store.current_cycle_number(session, subscription_id)
    return current is not None and cycle_number is not None and cycle_number <= current


def renewal_step(ctx, subscription):
    """One visit of the renewal job to a due subscription; returns what happened.

    Nothing changes before billing answers, so a step that raises leaves the
    subscription as it was, due again at the next pass.
    """
    if subscription.cancel_at_period_end:
        # A charge made by a pass whose transaction then failed is paid, but was never applied.
        made = ctx.billing.made(open_renewal_request(ctx, subscription)[0])
        if domain.paid_but_not_applied(made):
            record_payment_not_applied(ctx, subscription, made, "renewal")
        end_subscription(ctx, subscription, reason="buyer", actor="system")
        return "canceled"
    issued_before = subscription.waiting_charge_method == subscription.payment_method
    order = charge_open_renewal(ctx, subscription)
    outcome = domain.charge_outcome(order["status"])
    step = domain.after_renewal_charge(
        outcome, subscription.payment_method, subscription.cycle_end, subscription.first_failed_at, ctx.now,
    )
    if step.action == domain.RENEW:
        renew(ctx, subscription, order, actor="system")
        return "renewed"
    if step.action == domain.CHECK_AGAIN:
        subscription.waiting_charge_method = subscription.payment_method
        subscription.renewal_run_at = step.at
        if not issued_before:
            store.log_activity(ctx.session, subscription, "system", "renewal_order_issued", _order_details(order))
        return "waiting"
    # A boleto/pix still unpaid stays payable until the subscription is canceled.
    subscription.waiting_charge_method = subscription.payment_method if outcome == domain.CHARGE_WAITING else None
    return _attempt_failed(ctx, subscription, step, order.get("decline_reason"), order["amount_cents"], order["code"])


def renewal_not_charged(ctx, subscription, refusal):
    """billing refused to charge the renewal at all (`refusal`: ChargeNotMade), e.g. a
    card it cannot use: a failed attempt like a declined one, so the buyer and the
    merchant are told now, and the retries end it unless the payment method changes."""
    request, subscription.charge_attempts = open_renewal_request(ctx, subscription)
    subscription.waiting_charge_method = None
    step = domain.after_failed_attempt(subscription.first_failed_at, ctx.now)
    decline_reason = domain.refused_charge_reason(refusal.fields)
    return _attempt_failed(ctx, subscription, step, decline_reason, request["amount_cents"], None)


def _attempt_failed(ctx, subscription, step, decline_reason, amount_cents, order_code):
    """The renewal's attempt failed now: canceled after the last retry, else past due
    until the next, the buyer and the merchant told by one `subscription_past_due`
    (which notifications mails)."""
    if step.action == domain.CANCEL_FOR_NON_PAYMENT:
        end_subscription(ctx, subscription, reason="non_payment", actor="system")
        return "canceled"
    if subscription.first_failed_at is None:
        subscription.first_failed_at = ctx.now
    if subscription.status == "active":
        subscription.status = domain.transition(subscription.status, "past_due")
    subscription.next_charge_at = subscription.renewal_run_at = step.at
    store.log_change(ctx.session, ctx.events, subscription, "system", "subscription_past_due", {
        "cycle_number": subscription.cycle_number + 1, "attempts": subscription.charge_attempts,
        "next_retry_at": step.at, "decline_reason": decline_reason,
        "amount_cents": amount_cents, "order_code": order_code,
    })
    return "past_due"


def _order_details(order):
    return {key: order.get(key) for key in ("code", "status", "amount_cents", "decline_reason")}


def run_renewals(db, context_for, batch_size, billing_timeout, batches_at_once=1):
    """One pass of the renewal job over every subscription due now, `batch_size` at a
    time (see `renew_batch`), up to `batches_at_once` batches under way at once (each
    spends most of its time waiting on billing; on SQLite, whose write lock must not
    wait on billing, the caller passes 1); what happened, counted.

    Batches follow one another by (renewal_run_at, id), each claimed after the last
    one claimed before it, so a subscription is visited at most once per pass."""
    summary = Counter()
    position = {"after": None}
    claiming = eventlet.semaphore.Semaphore()

    def claim_next(session, now):
        with claiming:
            claimed = store.claim_due_batch(session, now, batch_size, position["after"])
            if claimed:
                position["after"] = (claimed[-1].renewal_run_at, claimed[-1].id)
            return claimed

    def batches():
        while (steps := renew_batch(db, context_for, claim_next, billing_timeout)) is not None:
            summary.update(steps)

    workers = [eventlet.spawn(batches) for _ in range(batches_at_once)]
    failures = []
    for worker in workers:
        try:
            worker.wait()
        except Exception as error:  # the pass stops; the others still finish their batch
            failures.append(error)
    if failures:
        raise failures[0]
    return dict(summary)


def renew_batch(db, context_for, claim_next, billing_timeout):
    """Claim the next due subscriptions with `claim_next(session, now)` (skipping those
    another replica holds), charge them with one billing call, and step each, all in
    one transaction: what happened, counted, or None when none is left.

    Nothing is written before billing answers (on SQLite the write lock must not wait
    on billing), and each charge keeps the key of its renewal, so a batch that fails
    (billing did not answer, a row changed under it) rolls back whole and the next
    pass asks again about the same charges; one charge that billing refused to make
    is a failed attempt of its subscription alone (`renewal_not_charged`).
    """
    claimed = None
    try:
        with db.transaction() as session:
            ctx = context_for(session)
            claimed = claim_next(session, ctx.now)
            if not claimed:
                return None
            requests = {subscription.id: open_renewal_request(ctx, subscription)[0] for subscription in claimed}
            to_charge = [requests[subscription.id] for subscription in claimed if not subscription.cancel_at_period_end]
            # Those ending now are not charged, but a charge may already have been made for them.
            to_look_up = [requests[subscription.id]["idempotency_key"]
                          for subscription in claimed if subscription.cancel_at_period_end]
            billing = ctx.billing.with_timeout(billing_timeout)
            answers = billing.charge_batch(to_charge) if to_charge else []
            made = billing.orders_by_keys(to_look_up) if to_look_up else {}
            charged = replace(ctx, billing=AnsweredCharges(to_charge, answers, made))
            steps = Counter()
            for subscription in claimed:
                try:
                    steps[renewal_step(charged, subscription)] += 1
                except ChargeNotMade as refusal:
                    log.warning("renewal of subscription %s not charged: %s", subscription.id, refusal)
                    steps[renewal_not_charged(charged, subscription, refusal)] += 1
            return steps
    except (PortalError, RemoteError, StaleDataError) as error:
        if not claimed:
            raise  # not even claimed: the pass cannot go on
        log.warning("a batch of %s renewals left for the next pass: %r", len(claimed), error)
        return Counter(left_for_next_pass=len(claimed))


class ChargeNotMade(PortalError):
    """billing refused one charge of a batch (its answer's `error`)."""


class AnsweredCharges:
    """billing as a renewal step sees it within a batch: each charge request answered
    with what one `charge_batch` call already said about its key, and the orders
    (`made`, by key) one `orders_by_keys` call found for those not charged."""

    def __init__(self, requests, answers, made):
        self._answers = {request["idempotency_key"]: answer for request, answer in zip(requests, answers)}
        self._made = made

    def made(self, request):
        """The order already made under the request's key, or None."""
        return self._made.get(request["idempotency_key"])

    def charge(self, request):
        answer = self._answers[request["idempotency_key"]]
        if answer["error"] is not None:
            raise ChargeNotMade(answer["error"]["message"], code=answer["error"]["code"],
                                fields=answer["error"]["fields"])
        return answer["order"]
