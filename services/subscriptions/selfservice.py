"""What a buyer may do with their own subscription, checked in this order:

1. the subscription is the buyer's (else 404, as if it did not exist);
2. the merchant's setting allows the operation (else 403 `operation_disabled`: the
   service is the authority, whatever a page offers);
3. the rules of domain.py allow it now (else 422 with the rule's code);
then the change is made through lifecycle.py. A refused charge raises, so the
caller's transaction rolls back and nothing changes.
"""
from services.common.errors import Conflict, Forbidden, NotFound, RuleRefused, ValidationFailed
from services.subscriptions import domain, lifecycle, store


def require_enabled(operation, merchant):
    refusal = domain.disabled_refusal(operation, merchant)
    if refusal is not None:
        raise Forbidden(refusal.message, code=refusal.code)


def refuse(refusal):
    if refusal is not None:
        raise RuleRefused(refusal.message, code=refusal.code)


def check(ctx, operation, subscription, **choice):
    """The merchant's setting, then the rules (domain.rule_refusal), for `operation`."""
    require_enabled(operation, subscription.merchant)
    refuse(domain.rule_refusal(operation, subscription, ctx.now, **choice))


# -- plan change

def plan_options(ctx, identity, subscription_id):
    """The current offer and each one it may switch to, with how the switch would go."""
    subscription = store.buyer_subscription(ctx.session, identity, subscription_id)
    require_enabled("change_plan", subscription.merchant)
    current = lifecycle.terms(subscription.offer)
    options = [
        (offer, domain.classify_plan_change(current, lifecycle.terms(offer)))
        for offer in store.plan_options(ctx.session, subscription)
    ]
    return subscription, options


def _check_plan_change(ctx, subscription, offer_id):
    offered = [offer.id for offer in store.plan_options(ctx.session, subscription)]
    check(ctx, "change_plan", subscription, offer_id=offer_id, plan_change_options=offered)


def quote_plan_change(ctx, identity, subscription_id, offer_id):
    subscription = store.buyer_subscription(ctx.session, identity, subscription_id)
    _check_plan_change(ctx, subscription, offer_id)
    new_offer = store.offer(ctx.session, subscription.merchant_id, offer_id)
    quote = domain.quote_plan_change(
        lifecycle.terms(subscription.offer), lifecycle.terms(new_offer),
        subscription.cycle_start, subscription.cycle_end, ctx.now,
        subscription.payment_method, subscription.balance_cents,
    )
    return store.add_quote(ctx.session, subscription, offer_id, quote, ctx.now)


def change_plan(ctx, identity, subscription_id, quote_id, installments):
    """Confirm a quote: charge exactly its amount, then apply, schedule or await payment.

    Returns the subscription and billing's order (None when nothing is charged now).
    """
    subscription = store.lock_subscription(ctx.session, subscription_id, identity)
    require_enabled("change_plan", subscription.merchant)
    quote = store.subscription_quote(ctx.session, subscription.id, quote_id)
    if quote.status == "applied" and quote.installments is None:
        # A confirmation that got no answer (billing answered after the deadline) whose
        # payment then applied the change: its repeat answers what it would have, with
        # the order of that one charge.
        quote.installments = installments
        return subscription, _charge_quote(ctx, subscription, quote, installments)
    still_valid = (
        quote.status == "open"
        and (quote.from_offer_id, quote.cycle_number, quote.payment_method)
        == (subscription.offer_id, subscription.cycle_number, subscription.payment_method)
        and ctx.now < quote.expires_at
    )
    if not still_valid:
        raise Conflict("Esta cotação não vale mais. Peça uma nova cotação.", code="quote_expired")
    _check_plan_change(ctx, subscription, quote.to_offer_id)
    refuse(domain.installments_refusal(installments, quote.max_installments))

    order = None if quote.kind == domain.SCHEDULED else _charge_quote(ctx, subscription, quote, installments)
    quote.installments = installments
    if order is None:
        lifecycle.schedule_plan_change(ctx, subscription, quote, actor="buyer")
        return subscription, None
    outcome = domain.charge_outcome(order["status"])
    if outcome == domain.CHARGE_FAILED:
        raise RuleRefused(
            "O pagamento foi recusado e nada foi alterado. Confira a forma de pagamento ou peça uma nova cotação.",
            code="charge_declined", fields={"decline_reason": [order.get("decline_reason") or "refused"]},
        )
    if outcome == domain.CHARGE_PAID:
        lifecycle.apply_plan_change(ctx, subscription, quote, order["code"], actor="buyer")
    else:
        lifecycle.await_plan_payment(ctx, subscription, quote, order["code"], actor="buyer")
    return subscription, order


def _charge_quote(ctx, subscription, quote, installments):
    """billing's order for the quote's charge, under the quote's own key: a repeat
    answers the first order and charges nothing more."""
    new_offer = store.offer(ctx.session, subscription.merchant_id, quote.to_offer_id)
    cycle_number = subscription.cycle_number + (1 if quote.kind == domain.NEW_CYCLE else 0)
    return lifecycle.charge(
        ctx, subscription, domain.plan_change_key(quote.id), "plan_change", quote.charge_cents,
        cycle_number, new_offer.product_name, installments=installments,
    )


def undo_plan_change(ctx, identity, subscription_id):
    subscription = store.lock_subscription(ctx.session, subscription_id, identity)
    check(ctx, "undo_plan_change", subscription)
    lifecycle.drop_pending_change(ctx, subscription, "buyer", why="undone")
    return subscription


# -- payment method

def begin_card_update(ctx, identity, subscription_id):
    """billing's one-time card-entry ticket for this buyer and subscription."""
    subscription = store.buyer_subscription(ctx.session, identity, subscription_id)
    check(ctx, "change_payment_method", subscription, method="credit_card")
    return ctx.billing.issue_card_entry_ticket({
        "email": subscription.email, "merchant_id": subscription.merchant_id, "subscription_id": subscription.id,
    })


def change_payment_method(ctx, identity, subscription_id, change, actor):
    """Switch the payment method; a past-due subscription is charged at once with it.

    Returns the subscription and the order of that charge (None when not past due).
    """
    subscription = store.lock_subscription(ctx.session, subscription_id, identity)
    check(ctx, "change_payment_method", subscription, method=change["method"])
    card = None
    if change["method"] == "credit_card":
        # Only a card billing tokenized for this buyer, at this merchant.
        owner = {"email": subscription.email, "merchant_id": subscription.merchant_id,
                 "session_id": identity["session_id"]}
        try:
            card = ctx.billing.get_payment_method(owner, change["card_token"])
        except NotFound:
            raise ValidationFailed(
                "Cartão não encontrado. Cadastre o cartão novamente.", code="unknown_card_token",
                fields={"card_token": ["Not a card of this buyer."]},
            ) from None
    order = None
    if subscription.status == "past_due":
        order = lifecycle.charge_open_renewal(ctx, subscription, payment=(change["method"], card and card["token"]))
    lifecycle.change_payment_method(ctx, subscription, change["method"], card, actor)
    if order is not None:
        lifecycle.settle_retry(ctx, subscription, order, actor)
    return subscription, order


# -- cancellation

def cancel(ctx, identity, subscription_id, request):
    subscription = store.lock_subscription(ctx.session, subscription_id, identity)
    check(ctx, "cancel", subscription)
    timing = domain.cancellation_timing(subscription.status, subscription.merchant.cancel_mode)
    if timing == domain.CANCEL_AT_PERIOD_END:
        lifecycle.schedule_cancellation(ctx, subscription, request["reason"], request["comment"], actor="buyer")
    else:
        subscription.cancel_feedback = request["reason"]
        subscription.cancel_comment = request["comment"]
        lifecycle.end_subscription(ctx, subscription, reason="buyer", actor="buyer")
    return subscription


def undo_cancel(ctx, identity, subscription_id):
    subscription = store.lock_subscription(ctx.session, subscription_id, identity)
    check(ctx, "undo_cancel", subscription)
    lifecycle.undo_cancellation(ctx, subscription, actor="buyer")
    return subscription


def activity(ctx, identity, subscription_id):
    subscription = store.buyer_subscription(ctx.session, identity, subscription_id)
    return store.activity(ctx.session, subscription.id)
