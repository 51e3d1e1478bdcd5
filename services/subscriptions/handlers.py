"""One handler per operation: `handler(command, uow, ports) -> result`.

A checkout's intake (`create_subscription`) is checked against its merchant and offer
(400 naming every field); a repeat of its `external_id` answers the first.

A buyer's operation is checked in this order:
1. the subscription is the buyer's (else 404, as if it did not exist);
2. the merchant's setting allows the operation (else 403 `operation_disabled`: the
   service is the authority, whatever a page offers), unless the merchant itself acts
   for its buyer (`command.actor`, its support through the API);
3. the subscription's rules allow it now (else 422 with the rule's code);
then the aggregate (domain/subscription.py) makes the change and records it, and
`uow.commit()` writes it. Charges go through billing under a key derived from the
operation before anything is written (on SQLite a worker holding the write lock must
not wait on another service), so running a handler again after a crash or a rollback
asks billing about the same charge instead of charging twice; a refused charge raises,
so the caller's transaction rolls back and nothing changes.
"""
import logging
from collections import Counter
from threading import Lock

from services.common.errors import Conflict, Forbidden, NotFound, PortalError, RuleRefused, ValidationFailed
from services.common.schemas import as_sale_card
from services.subscriptions.domain import rules
from services.subscriptions.domain.rules import MERCHANT
from services.subscriptions.domain.subscription import (
    CANCEL, CHANGE_PAYMENT_METHOD, CHANGE_PLAN, OPERATION_DISABLED, QUOTE_EXPIRED, UNDO_CANCEL, UNDO_PLAN_CHANGE,
    Subscription, terms,
)

log = logging.getLogger(__name__)

# The error a refusal answers with, by its code (any other: RuleRefused, 422).
REFUSAL_ERRORS = {OPERATION_DISABLED: Forbidden, QUOTE_EXPIRED: Conflict}


def refuse(refusal, **fields):
    if refusal is not None:
        raise REFUSAL_ERRORS.get(refusal.code, RuleRefused)(refusal.message, code=refusal.code, fields=fields or None)


# -- intake

def create_subscription(command, uow, ports):
    """Register a checkout's subscription, its card on file with billing; a repeat of
    its external_id answers the first, changing nothing and announcing nothing."""
    data = command.subscription
    existing = uow.subscriptions.by_external_id(data["merchant_id"], data["external_id"])
    if existing is not None:
        return existing
    merchant = uow.merchants.get(data["merchant_id"])
    offer = uow.offers.get(data["merchant_id"], data["offer_id"])
    problems = rules.intake_problems(data, merchant is not None, offer)
    if problems:
        raise ValidationFailed(f"Invalid subscription: {', '.join(sorted(problems))}.", fields=problems)
    if data["payment"]["method"] == "credit_card":
        # On file with billing before anything is written (on SQLite no write lock may
        # wait on another service), so that the renewals can charge it even if the
        # checkout sends the first order later, or never; a card another buyer's is
        # refused here rather than at every renewal.
        payment = {field: data["payment"][field] for field in ("method", *rules.CARD_FIELDS, "customer_ref")}
        ports.billing.register_card({
            "merchant_id": merchant.id, "email": data["email"],
            "payment": as_sale_card(payment) if command.card_as_sale_card else payment,
        })
    subscription = Subscription.register(data, merchant, offer, ports.clock(), ports.issue_ahead)
    uow.subscriptions.add(subscription)
    uow.contacts.ensure(merchant.id, subscription.email)
    uow.commit()
    return subscription


# -- cancellation

def cancel(command, uow, ports):
    now = ports.clock()
    subscription = uow.subscriptions.lock(command.subscription_id, command.identity)
    refuse(subscription.refusal_for(CANCEL, now, actor=command.actor))
    subscription.cancel(command.reason, command.comment, command.actor, now, command.at_period_end)
    uow.commit()
    return subscription


def undo_cancel(command, uow, ports):
    subscription = uow.subscriptions.lock(command.subscription_id, command.identity)
    refuse(subscription.refusal_for(UNDO_CANCEL, ports.clock(), actor=command.actor))
    subscription.undo_cancellation(command.actor, ports.issue_ahead)
    uow.commit()
    return subscription


# -- payment method

def begin_card_update(command, uow, ports):
    """billing's one-time card-entry ticket for this buyer and subscription, with what the
    merchant knows of the buyer as the card holder (to prefill what the processor asks)."""
    subscription = uow.subscriptions.owned(command.identity, command.subscription_id)
    refuse(subscription.refusal_for(CHANGE_PAYMENT_METHOD, ports.clock(), method="credit_card"))
    return ports.billing.issue_card_entry_ticket({
        "email": subscription.email, "merchant_id": subscription.merchant_id, "subscription_id": subscription.id,
        "holder": uow.contacts.card_holder(subscription.merchant_id, subscription.email),
    })


def change_payment_method(command, uow, ports):
    """Switch the payment method; a past-due subscription is charged at once with it.

    Returns the subscription and the order of that charge (None when not past due).
    """
    now = ports.clock()
    subscription = uow.subscriptions.lock(command.subscription_id, command.identity)
    refuse(subscription.refusal_for(CHANGE_PAYMENT_METHOD, now, method=command.method))
    card = None
    if command.method == "credit_card":
        # Only a card billing tokenized for this buyer, at this merchant.
        owner = {"email": subscription.email, "merchant_id": subscription.merchant_id,
                 "session_id": command.identity["session_id"]}
        try:
            card = ports.billing.get_payment_method(owner, command.card_token)
        except NotFound:
            raise ValidationFailed(
                "Cartão não encontrado. Cadastre o cartão novamente.", code="unknown_card_token",
                fields={"card_token": ["Not a card of this buyer."]},
            ) from None
    order = None
    if subscription.status == "past_due":
        request, attempt = subscription.open_renewal_request(payment=(command.method, card and card["token"]))
        order = ports.billing.charge(request)
    subscription.change_payment_method(command.method, card, command.actor, ports.issue_ahead)
    if order is not None:
        subscription.settle_retry(order, attempt, command.actor, now, ports.issue_ahead)
    uow.commit()
    return subscription, order


# -- plan change

def plan_options(command, uow, ports):
    """The subscription and each offer it may switch to, with how the switch would go."""
    subscription = uow.subscriptions.owned(command.identity, command.subscription_id)
    refuse(subscription.setting_refusal(CHANGE_PLAN))
    current = terms(subscription.offer)
    return subscription, [
        (offer, rules.classify_plan_change(current, terms(offer))) for offer in uow.offers.options_for(subscription)
    ]


def quote_plan_change(command, uow, ports):
    now = ports.clock()
    subscription = uow.subscriptions.owned(command.identity, command.subscription_id)
    refuse(subscription.refusal_for(CHANGE_PLAN, now, offer_id=command.offer_id, actor=command.actor))
    new_offer = uow.offers.get(subscription.merchant_id, command.offer_id)
    refuse(rules.archived_option_refusal(new_offer))
    quote = subscription.quote_plan_change(new_offer, now)
    uow.quotes.add(quote)
    uow.commit()
    return quote


def change_plan(command, uow, ports):
    """Confirm a quote: charge exactly its amount, then apply, schedule or await payment.

    Returns the subscription and billing's order (None when nothing is charged now).
    """
    now = ports.clock()
    subscription = uow.subscriptions.lock(command.subscription_id, command.identity)
    if command.actor != MERCHANT:
        refuse(subscription.setting_refusal(CHANGE_PLAN))
    quote = uow.quotes.of_subscription(subscription.id, command.quote_id)
    new_offer = uow.offers.get(subscription.merchant_id, quote.to_offer_id)
    charge = subscription.quote_charge_request(quote, new_offer, command.installments)
    if quote.status == "applied" and quote.installments is None:
        # A confirmation that got no answer (billing answered after the deadline) whose
        # payment then applied the change: its repeat answers what it would have, with
        # the order of that one charge.
        order = ports.billing.charge(charge)
        quote.installments = command.installments
        uow.commit()
        return subscription, order
    refuse(subscription.quote_refusal(quote, now))
    refuse(subscription.refusal_for(CHANGE_PLAN, now, offer_id=quote.to_offer_id, actor=command.actor))
    refuse(rules.installments_refusal(command.installments, quote.max_installments))
    order = None if quote.kind == rules.SCHEDULED else ports.billing.charge(charge)
    refuse(subscription.confirm_plan_change(quote, new_offer, command.installments, order, command.actor, now,
                                            ports.issue_ahead),
           decline_reason=[(order or {}).get("decline_reason") or "refused"])
    uow.commit()
    return subscription, order


def undo_plan_change(command, uow, ports):
    subscription = uow.subscriptions.lock(command.subscription_id, command.identity)
    refuse(subscription.refusal_for(UNDO_PLAN_CHANGE, ports.clock()))
    subscription.drop_pending_change("buyer", why="undone")
    uow.commit()
    return subscription


# -- the merchant's support

def note_login_link_requested(command, uow, ports):
    """The buyer's subscriptions at the merchant, each with the request noted (NotFound:
    not a buyer of the merchant's)."""
    subscriptions = uow.subscriptions.of_buyer(command.merchant_id, command.email)
    for subscription in subscriptions:
        subscription.note_login_link_requested(command.actor)
    uow.commit()
    return subscriptions


# -- billing's payments

def settle_order(command, uow, ports):
    """billing reports an order paid (a plan change's boleto/pix or late card answer, a
    renewal's) or a charge failed (an awaited plan change's; a failed renewal is seen by
    the renewal job, which asks billing again by the same key). Each event is acted on
    once (the inbox)."""
    order, paid = command.order, command.event_type == "order_paid"
    kind, subscription_id = order.get("kind"), order.get("subscription_id")
    if kind is None or subscription_id is None or rules.left_to_the_renewal_job(order):
        return  # a checkout's order, or the renewal job's own first charge
    if paid and kind != "plan_change":
        current = uow.subscriptions.current_cycle_number(subscription_id)
        cycle_number = order.get("cycle_number")
        if current is not None and cycle_number is not None and cycle_number <= current:
            return  # a late payment of a cycle already renewed: nothing to apply or to remember
    if not uow.first_delivery(command.event_id, command.event_type):
        return
    now = ports.clock()
    if kind == "plan_change":
        quote = uow.quotes.get(order["idempotency_key"].removeprefix("plan_change:"))
        if quote is None:
            return
        subscription = uow.subscriptions.lock(quote.subscription_id)
        uow.quotes.refresh(quote)
        if paid:
            new_offer = uow.offers.get(subscription.merchant_id, quote.to_offer_id)
            subscription.settle_plan_change_payment(quote, new_offer, order, now, ports.issue_ahead)
        else:
            subscription.settle_plan_change_failure(quote)
    elif paid:
        subscription = uow.subscriptions.lock(subscription_id)
        subscription.settle_renewal_payment(order["cycle_number"], order, now, ports.issue_ahead)
    uow.commit()


# -- renewals

class ClaimPosition:
    """Where a renewal pass is: the (renewal_run_at, id) of the last subscription
    claimed, shared by the batches of one pass, each claimed after the last one claimed
    before it (one at a time), so a subscription is visited at most once per pass."""

    def __init__(self):
        self.lock = Lock()
        self.after = None

    def claim(self, uow, now, batch_size):
        with self.lock:
            claimed = uow.subscriptions.claim_due_batch(now, batch_size, self.after)
            if claimed:
                self.after = (claimed[-1].renewal_run_at, claimed[-1].id)
            return claimed


def renew_due_batch(command, uow, ports):
    """Claim the next due subscriptions (skipping those another replica holds), charge
    them with one billing call, and step each: what happened, counted (one count per
    subscription claimed), or None when none is left.

    Nothing is written before billing answers, and each charge keeps the key of its
    renewal, so a batch whose transaction fails (billing did not answer, a row changed
    under it) changes nothing and the next pass asks again about the same charges; one
    charge that billing refused to make is a failed attempt of its subscription alone.
    """
    now = ports.clock()
    claimed = command.position.claim(uow, now, command.batch_size)
    if not claimed:
        return None
    requests = {subscription.id: subscription.open_renewal_request() for subscription in claimed}
    to_charge = [requests[subscription.id][0] for subscription in claimed if not subscription.cancel_at_period_end]
    # Those ending now are not charged, but a charge may already have been made for them.
    to_look_up = [requests[subscription.id][0]["idempotency_key"]
                  for subscription in claimed if subscription.cancel_at_period_end]
    billing = ports.billing.with_timeout(command.billing_timeout)
    try:
        answers = dict(zip([request["idempotency_key"] for request in to_charge],
                           billing.charge_batch(to_charge) if to_charge else []))
        made = billing.orders_by_keys(to_look_up) if to_look_up else {}
    except PortalError as error:
        # Nothing changed yet: the whole batch is due again at the next pass.
        log.warning("a batch of %s renewals left for the next pass: %r", len(claimed), error)
        return Counter(left_for_next_pass=len(claimed))
    steps = Counter()
    for subscription in claimed:
        request, attempt = requests[subscription.id]
        key = request["idempotency_key"]
        if subscription.cancel_at_period_end:
            subscription.end_at_period_end(made.get(key), now)
            steps["canceled"] += 1
        elif answers[key]["error"] is not None:
            log.warning("renewal of subscription %s not charged: %s", subscription.id, answers[key]["error"])
            steps[subscription.renewal_not_charged(answers[key]["error"]["fields"], now)] += 1
        else:
            steps[subscription.renewal_charged(answers[key]["order"], attempt, now, ports.issue_ahead)] += 1
    uow.commit()
    return steps

