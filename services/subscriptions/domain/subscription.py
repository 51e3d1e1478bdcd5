"""The subscription aggregate: one subscription, the rules that decide what may happen
to it (domain/rules.py), and the changes that do happen, each recorded on it.

A plain class, mapped onto the `subscriptions` table by models.py (SQLAlchemy's
imperative mapping); `merchant`, `offer`, `pending_offer` and `pending_quote` are loaded
with it, read-only: its methods set the key columns and the objects together.

Every change records a `Change` in `changes`: an event for other systems and the
activity entry the buyer reads (same data), an activity entry alone, or (intake's) an
event alone. The unit of work (unit_of_work.py) writes them in the transaction of the
change, then clears them.
"""
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime

from services.subscriptions.domain import rules
from services.subscriptions.domain.rules import MERCHANT, Refusal

AWAITING_PAYMENT = "awaiting_payment"

# Each operation a buyer may do by themselves, and the merchant's setting that allows it.
CHANGE_PAYMENT_METHOD = "change_payment_method"
CHANGE_PLAN = "change_plan"
UNDO_PLAN_CHANGE = "undo_plan_change"
CANCEL = "cancel"
UNDO_CANCEL = "undo_cancel"
BUYER_OPERATIONS = {
    CHANGE_PAYMENT_METHOD: "customer_can_change_payment_method",
    CHANGE_PLAN: "customer_can_change_plan",
    UNDO_PLAN_CHANGE: "customer_can_change_plan",
    CANCEL: "customer_can_cancel",
    UNDO_CANCEL: "customer_can_cancel",
}
SETTING_NAMES = {
    "customer_can_change_plan": "a troca de plano",
    "customer_can_change_payment_method": "a troca da forma de pagamento",
    "customer_can_cancel": "o cancelamento",
}
# Refusal codes that are not a rule of the subscription's state: the merchant's setting
# (403), and a quote that no longer holds (409).
OPERATION_DISABLED = "operation_disabled"
QUOTE_EXPIRED = "quote_expired"


@dataclass(frozen=True)
class NextCharge:
    at: datetime
    amount_cents: int


# How a `Change` is written (store.write_changes).
# An event (its type is the action, e.g. subscription_canceled; its data names the
# subscription, the buyer and the actor too) with the activity entry it implies.
EVENT = "event"
# An activity entry alone (e.g. renewal_order_issued).
NOTE = "note"
# An event alone, its data as recorded: intake's subscription_created, whose version 1
# names no actor, and whose activity entry is a note of its own.
ANNOUNCEMENT = "announcement"


@dataclass(frozen=True)
class Change:
    """A change recorded on the aggregate, written as its `kind` says."""

    actor: str
    action: str
    data: dict
    kind: str = EVENT


def terms(offer):
    return rules.OfferTerms(offer.price_cents, offer.periodicity_months, offer.max_installments)


class PlanChangeQuote:
    """What a plan change costs, as the buyer was shown it; confirming charges exactly this."""

    def __init__(self, **fields):
        for name, value in fields.items():
            setattr(self, name, value)

    def is_current_for(self, subscription):
        return (self.from_offer_id, self.cycle_number) == (subscription.offer_id, subscription.cycle_number)


class Subscription:
    def __init__(self, **fields):
        for name, value in fields.items():
            setattr(self, name, value)
        self.changes = []

    @classmethod
    def register(cls, data, merchant, offer, now, issue_ahead):
        """A checkout's subscription (`data` as intake loaded it, checked by
        rules.intake_problems against `merchant` and `offer`), announced; its
        `next_charge_at` defaults to when its status says it is charged next."""
        payment = data["payment"]
        next_charge_at = data["next_charge_at"] or rules.initial_next_charge_at(data["status"], data["cycle_end"])
        past_due = data["status"] == "past_due"
        subscription = cls(
            id=str(uuid.uuid4()), merchant_id=merchant.id, merchant=merchant, external_id=data["external_id"],
            offer_id=offer.id, offer=offer, email=data["email"], status=data["status"],
            cancel_reason=data["cancel_reason"], cancel_at_period_end=False,
            cycle_number=data["cycle_number"], cycle_start=data["cycle_start"], cycle_end=data["cycle_end"],
            next_charge_at=next_charge_at,
            renewal_run_at=rules.initial_renewal_run_at(data["status"], payment["method"], next_charge_at,
                                                        issue_ahead),
            # A past-due subscription has already had its renewal charge refused.
            charge_attempts=1 if past_due else 0, first_failed_at=data["cycle_end"] if past_due else None,
            payment_method=payment["method"], card_brand=payment["card_brand"], card_last4=payment["card_last4"],
            card_exp=payment["card_exp"], payment_token=payment["token"], installments=data["installments"],
            balance_cents=0, created_at=data["created_at"] or now,
        )
        subscription._note("merchant", "subscription_created", {
            "external_id": data["external_id"], "offer_id": offer.id, "status": data["status"],
        })
        subscription.changes.append(Change("merchant", "subscription_created", {
            "subscription_id": subscription.id, "external_id": data["external_id"], "offer_id": offer.id,
            "email": data["email"], "status": data["status"], "cycle_end": data["cycle_end"],
        }, ANNOUNCEMENT))
        return subscription

    # -- what is recorded

    def _record(self, actor, event_type, data):
        self.changes.append(Change(actor, event_type, data))

    def _note(self, actor, action, details):
        self.changes.append(Change(actor, action, details, NOTE))

    def note_login_link_requested(self, actor):
        """Someone (the merchant's support) asked for the buyer's login e-mail."""
        self._note(actor, "login_link_requested", {})

    # -- what the buyer may do now

    @property
    def methods_accepted(self):
        """The methods the buyer may switch to: the offer's, among the merchant's."""
        return rules.accepted_methods(self.merchant.payment_methods_allowed, self.offer.payment_methods_accepted)

    @property
    def renewal_in_progress(self):
        """A renewal order was issued and is awaited (a boleto/pix, an unknown card answer)."""
        return self.waiting_charge_method is not None

    def setting_refusal(self, operation):
        """Why the merchant's settings leave `operation` to its support, or None."""
        setting = BUYER_OPERATIONS[operation]
        if getattr(self.merchant, setting):
            return None
        return Refusal(
            OPERATION_DISABLED,
            f"{self.merchant.name} não permite {SETTING_NAMES[setting]} pelo portal. Fale com o atendimento.",
        )

    def refusal_for(self, operation, now, method=None, offer_id=None, actor="buyer"):
        """Why the buyer may not do `operation` now (the merchant's setting first, then
        the rules), or None; `method` and `offer_id` narrow a payment method or plan
        change to one choice (None: any). The merchant acting for its buyer is bound
        by the rules alone: its settings are what it lets the buyer do by themselves."""
        setting_refusal = self.setting_refusal(operation) if actor != MERCHANT else None
        return setting_refusal or self._rule_refusal(operation, now, method, offer_id)

    def _rule_refusal(self, operation, now, method, offer_id):
        if operation == CHANGE_PAYMENT_METHOD:
            return rules.payment_method_refusal(self.status, method, self.methods_accepted)
        if operation == CHANGE_PLAN:
            return rules.plan_change_refusal(
                self.status, self.pending_change_status is not None, self.renewal_in_progress, offer_id,
                self.offer.plan_change_options or [],
            )
        if operation == UNDO_PLAN_CHANGE:
            return rules.undo_plan_change_refusal(
                self.pending_change_status, self.renewal_in_progress, self.cycle_end, now,
            )
        if operation == CANCEL:
            return rules.cancel_refusal(self.status, self.cancel_at_period_end)
        return rules.undo_cancel_refusal(self.status, self.cancel_at_period_end, self.cycle_end, now)

    def allowed_operations(self, now):
        """The operations the buyer may do now, in BUYER_OPERATIONS' order: what the
        page offers is exactly what the handlers accept."""
        return [operation for operation in BUYER_OPERATIONS if self.refusal_for(operation, now) is None]

    def cancel_takes_effect(self, at_period_end=None):
        """When a cancellation would take effect (rules.CANCEL_NOW or
        CANCEL_AT_PERIOD_END, as `at_period_end` asks or else by the merchant's mode),
        or None once it has ended."""
        if not rules.is_open(self.status):
            return None
        mode = self.merchant.cancel_mode if at_period_end is None else rules.cancel_mode_of(at_period_end)
        return rules.cancellation_timing(self.status, mode)

    def next_cycle_offer(self):
        """The offer the next cycle is on: a scheduled change's, or the current one."""
        return self.pending_offer if self.pending_change_status == rules.SCHEDULED else self.offer

    def next_charge(self):
        """When the next renewal charges and how much (the price it renews at, less the
        credit kept from a plan change), or None when none is due."""
        if not rules.is_open(self.status) or self.next_charge_at is None:
            return None
        amount_cents, _ = rules.apply_balance(self.next_cycle_offer().price_cents, self.balance_cents)
        return NextCharge(self.next_charge_at, amount_cents)

    # -- charges (billing's requests; billing's answers come back to the methods below)

    def charge_request(self, key, kind, amount_cents, cycle_number, product_name, installments=1, due_at=None,
                       payment=None):
        """What billing is asked to charge under `key` (a repeat of a key answers with
        its first order), with `payment` (method, card token) or the subscription's own."""
        method, token = payment or (self.payment_method, self.payment_token)
        card = method == "credit_card"
        return {
            "idempotency_key": key, "merchant_id": self.merchant_id, "email": self.email,
            "subscription_id": self.id, "cycle_number": cycle_number, "kind": kind,
            "product_name": product_name, "amount_cents": amount_cents,
            "installments": installments if card else 1, "method": method,
            "payment_token": token if card else None,
            "due_at": None if card or due_at is None else due_at.isoformat(),
        }

    def open_renewal_request(self, payment=None):
        """The charge request of the renewal still unpaid and its attempt number: a
        waiting boleto/pix (or unknown card answer) is asked about again under its own
        key, never issued twice. Changes nothing."""
        method = payment[0] if payment else self.payment_method
        offer = self.next_cycle_offer()
        amount_cents, _ = rules.apply_balance(offer.price_cents, self.balance_cents)
        attempt = self.charge_attempts if self.waiting_charge_method == method else self.charge_attempts + 1
        cycle_number = self.cycle_number + 1
        request = self.charge_request(
            rules.charge_key(self.id, cycle_number, attempt), "renewal" if attempt == 1 else "retry",
            amount_cents, cycle_number, offer.product_name, installments=self.installments,
            due_at=self.cycle_end, payment=payment,
        )
        return request, attempt

    def quote_charge_request(self, quote, new_offer, installments):
        """billing's request for a quote's charge, under the quote's own key."""
        cycle_number = self.cycle_number + (1 if quote.kind == rules.NEW_CYCLE else 0)
        return self.charge_request(
            rules.plan_change_key(quote.id), "plan_change", quote.charge_cents, cycle_number,
            new_offer.product_name, installments=installments,
        )

    # -- plan change

    def quote_plan_change(self, new_offer, now):
        """The terms of switching to `new_offer` now (the caller checked `refusal_for`)."""
        quote = rules.quote_plan_change(
            terms(self.offer), terms(new_offer), self.cycle_start, self.cycle_end, now,
            self.payment_method, self.balance_cents,
        )
        return PlanChangeQuote(
            id=str(uuid.uuid4()), subscription_id=self.id, from_offer_id=self.offer_id,
            cycle_number=self.cycle_number, payment_method=self.payment_method, to_offer_id=new_offer.id,
            **asdict(quote), created_at=now, expires_at=now + rules.QUOTE_VALIDITY, status="open",
            installments=None, order_code=None,
        )

    def quote_refusal(self, quote, now):
        """Why `quote` cannot be confirmed any more (the state it was computed from
        changed, it expired or was used), or None."""
        still_valid = (
            quote.status == "open"
            and (quote.from_offer_id, quote.cycle_number, quote.payment_method)
            == (self.offer_id, self.cycle_number, self.payment_method)
            and now < quote.expires_at
        )
        return None if still_valid else Refusal(QUOTE_EXPIRED, "Esta cotação não vale mais. Peça uma nova cotação.")

    def confirm_plan_change(self, quote, new_offer, installments, order, actor, now, issue_ahead):
        """The buyer confirms `quote`, whose charge billing answered with `order` (None:
        nothing to charge now): scheduled, applied, or awaiting its payment. A refused
        charge changes nothing and returns its Refusal."""
        if order is None:
            quote.installments = installments
            self._set_pending(quote, new_offer, rules.SCHEDULED)
            self._record(actor, "subscription_plan_change_scheduled", {
                "from_offer_id": self.offer_id, "to_offer_id": quote.to_offer_id,
                "takes_effect": rules.TAKES_EFFECT_AT_CYCLE_END, "effective_at": self.cycle_end, "order_code": None,
            })
            return None
        outcome = rules.charge_outcome(order["status"])
        if outcome == rules.CHARGE_FAILED:
            return Refusal(
                "charge_declined",
                "O pagamento foi recusado e nada foi alterado. Confira a forma de pagamento ou peça uma nova cotação.",
            )
        quote.installments = installments
        if outcome == rules.CHARGE_PAID:
            self.apply_plan_change(quote, new_offer, order["code"], actor, now, issue_ahead)
        else:
            self._await_plan_payment(quote, new_offer, order["code"], actor)
        return None

    def _await_plan_payment(self, quote, new_offer, order_code, actor):
        """An immediate change whose charge is not paid yet (boleto/pix, or a card answer
        still unknown): it applies when billing reports the order paid."""
        self._set_pending(quote, new_offer, AWAITING_PAYMENT)
        quote.order_code = order_code
        self._record(actor, "subscription_plan_change_scheduled", {
            "from_offer_id": self.offer_id, "to_offer_id": quote.to_offer_id,
            "takes_effect": rules.TAKES_EFFECT_ON_PAYMENT, "effective_at": None, "order_code": order_code,
        })

    def _set_pending(self, quote, new_offer, status):
        self.pending_offer_id, self.pending_offer = quote.to_offer_id, new_offer
        self.pending_quote_id, self.pending_quote = quote.id, quote
        self.pending_change_status = status
        quote.status = status

    def _clear_pending(self):
        self.pending_offer_id = self.pending_offer = None
        self.pending_quote_id = self.pending_quote = None
        self.pending_change_status = None

    def apply_plan_change(self, quote, new_offer, order_code, actor, now, issue_ahead):
        """Put the subscription on the quote's offer, on the quoted terms."""
        from_offer_id = self.offer_id
        self.offer_id, self.offer = new_offer.id, new_offer
        self.balance_cents = quote.balance_cents
        if quote.kind == rules.NEW_CYCLE:
            # As quoted when charged at once; from the payment when it waited for a boleto/pix.
            start = quote.cycle_start if quote.takes_effect == rules.TAKES_EFFECT_NOW else now
            self.cycle_number += 1
            self.cycle_start = start
            self.cycle_end = rules.add_months(start, new_offer.periodicity_months)
            self.installments = quote.installments or 1
            self._restart_renewals(issue_ahead)
        else:
            self.installments = min(self.installments, new_offer.max_installments)
        self._clear_pending()
        quote.status = "applied"
        quote.order_code = order_code
        self._record(actor, "subscription_plan_changed", {
            "from_offer_id": from_offer_id, "to_offer_id": new_offer.id, "kind": quote.kind,
            "charge_cents": quote.charge_cents, "balance_cents": self.balance_cents, "order_code": order_code,
            "cycle_number": self.cycle_number, "cycle_start": self.cycle_start, "cycle_end": self.cycle_end,
        })

    def drop_pending_change(self, actor, why):
        """Forget the pending plan change: undone, its charge failed, or it can no longer happen."""
        self.pending_quote.status = "dropped"
        self._record(actor, "subscription_plan_change_dropped", {"to_offer_id": self.pending_offer_id, "why": why})
        self._clear_pending()

    def settle_plan_change_payment(self, quote, new_offer, order, now, issue_ahead):
        """billing reports the charge of `quote` paid: applied if it still can be, else
        recorded as a payment not applied."""
        if quote.status == "applied":
            return
        awaited = self.pending_quote_id == quote.id
        # An "open" quote was charged by a request that did not commit (e.g. it timed out).
        unconfirmed = quote.status == "open" and self.pending_change_status is None
        if self.status == "active" and quote.is_current_for(self) and (awaited or unconfirmed):
            self.apply_plan_change(quote, new_offer, order["code"], "system", now, issue_ahead)
        else:
            self.record_payment_not_applied(order, "plan_change")

    def settle_plan_change_failure(self, quote):
        """billing reports the charge of an awaited plan change failed: the change is off."""
        if quote.status == AWAITING_PAYMENT and self.pending_quote_id == quote.id:
            self.drop_pending_change("system", why="charge_failed")

    # -- payment method

    def change_payment_method(self, method, card, actor, issue_ahead):
        """Switch to `method` (`card`: billing's payment method view, for credit_card)."""
        self.payment_method = method
        self.card_brand = card and card["brand"]
        self.card_last4 = card and card["last4"]
        self.card_exp = card and card["exp"]
        self.payment_token = card and card["token"]
        if method != "credit_card":
            self.installments = 1
        if self.status == "active" and not self.cancel_at_period_end:
            self.renewal_run_at = rules.renewal_run_at(method, self.next_charge_at, issue_ahead)
        self._record(actor, "subscription_payment_method_changed", {
            "method": method, "card_brand": self.card_brand, "card_last4": self.card_last4, "card_exp": self.card_exp,
        })

    def settle_retry(self, order, attempt, actor, now, issue_ahead):
        """"Update and pay now": the past-due renewal was charged at once (its
        `attempt`-th charge) with the new payment method; the retry schedule stays."""
        self.charge_attempts = attempt
        outcome = rules.charge_outcome(order["status"])
        if outcome == rules.CHARGE_PAID:
            self.renew(order, actor, now, issue_ahead)
        elif outcome == rules.CHARGE_WAITING:
            self.waiting_charge_method = self.payment_method
            self._note(actor, "renewal_order_issued", order_details(order))
        else:
            self.waiting_charge_method = None
            self._note(actor, "payment_retry_failed", order_details(order))

    # -- cancellation

    def cancel(self, feedback, comment, actor, now, at_period_end=None):
        """The buyer, or the merchant for them, cancels: at the period's end or now, as
        `at_period_end` asks or else as the merchant's mode says."""
        if self.cancel_takes_effect(at_period_end) == rules.CANCEL_AT_PERIOD_END:
            self.schedule_cancellation(feedback, comment, actor)
        else:
            self.cancel_feedback, self.cancel_comment = feedback, comment
            self.cancel_now(actor, actor, now)

    def schedule_cancellation(self, feedback, comment, actor):
        if self.pending_change_status == rules.SCHEDULED:
            self.drop_pending_change(actor, why="canceled")
        self.cancel_at_period_end = True
        self.cancel_feedback = feedback
        self.cancel_comment = comment
        self.next_charge_at = None
        # Ended by the renewal job when the cycle ends; no order is issued ahead for it.
        self.renewal_run_at = self.cycle_end
        self._record(actor, "subscription_cancellation_scheduled", {
            "effective_at": self.cycle_end, "feedback": feedback, "comment": comment,
        })

    def undo_cancellation(self, actor, issue_ahead):
        self.cancel_at_period_end = False
        self.cancel_feedback = None
        self.cancel_comment = None
        self.next_charge_at = self.cycle_end
        self.renewal_run_at = rules.renewal_run_at(self.payment_method, self.cycle_end, issue_ahead)
        self._record(actor, "subscription_cancellation_undone", {"next_charge_at": self.cycle_end})

    def cancel_now(self, reason, actor, now):
        """Canceled for good: by the buyer (now or at the period's end) or for non-payment."""
        if self.pending_change_status is not None:
            self.drop_pending_change(actor, why="canceled")
        self.status = rules.transition(self.status, "canceled")
        self.cancel_reason = reason
        self.cancel_at_period_end = False
        self.canceled_at = now
        self.next_charge_at = None
        self.renewal_run_at = None
        self.waiting_charge_method = None
        self._record(actor, "subscription_canceled", {
            "reason": reason, "feedback": self.cancel_feedback, "comment": self.cancel_comment, "canceled_at": now,
        })

    # -- renewal

    def _restart_renewals(self, issue_ahead):
        """A fresh renewal schedule after the cycle changed: charged next when it ends."""
        self.charge_attempts = 0
        self.first_failed_at = None
        self.waiting_charge_method = None
        self.next_charge_at = self.cycle_end
        self.renewal_run_at = rules.renewal_run_at(self.payment_method, self.cycle_end, issue_ahead)

    def renew(self, order, actor, now, issue_ahead):
        """The renewal is paid (`order`): the next cycle starts where the last one ended,
        or at the renewal's first attempt if a whole cycle was missed; a scheduled plan
        change takes effect with it, one awaiting payment is dropped."""
        cycle_number = self.cycle_number + 1
        months = self.next_cycle_offer().periodicity_months
        cycle_start = rules.renewed_cycle_start(self.cycle_end, months, self.first_failed_at or now)
        cycle_end = rules.add_months(cycle_start, months)
        if self.pending_change_status == rules.SCHEDULED:
            from_offer_id, quote = self.offer_id, self.pending_quote
            self.offer_id, self.offer = self.pending_offer_id, self.pending_offer
            quote.status = "applied"
            self._clear_pending()
            self.installments = min(self.installments, self.offer.max_installments)
            self._record("system", "subscription_plan_changed", {
                "from_offer_id": from_offer_id, "to_offer_id": self.offer_id, "kind": rules.SCHEDULED,
                "charge_cents": 0, "balance_cents": self.balance_cents, "order_code": None,
                "cycle_number": cycle_number, "cycle_start": cycle_start, "cycle_end": cycle_end,
            })
        elif self.pending_change_status == AWAITING_PAYMENT:
            self.drop_pending_change("system", why="not_paid")
        offer = self.offer
        _, self.balance_cents = rules.apply_balance(offer.price_cents, self.balance_cents)
        self.cycle_number = cycle_number
        self.cycle_start = cycle_start
        self.cycle_end = cycle_end
        if self.status != "active":
            self.status = rules.transition(self.status, "active")
        self._restart_renewals(issue_ahead)
        self._record(actor, "subscription_renewed", {
            "offer_id": offer.id, "cycle_number": cycle_number, "cycle_start": cycle_start,
            "cycle_end": self.cycle_end, "amount_cents": order["amount_cents"], "order_code": order["code"],
        })

    def settle_renewal_payment(self, cycle_number, order, now, issue_ahead):
        """billing reports the renewal of `cycle_number` paid (a boleto/pix, or a card
        settled late): renewed if it is the next cycle and still wanted, else recorded
        as a payment not applied; a cycle already renewed changes nothing."""
        if cycle_number <= self.cycle_number:
            return
        payable = rules.is_open(self.status) and not self.cancel_at_period_end
        if payable and cycle_number == self.cycle_number + 1:
            self.renew(order, "system", now, issue_ahead)
        else:
            self.record_payment_not_applied(order, "renewal")

    def record_payment_not_applied(self, order, kind):
        """A paid order (of `kind`: renewal or plan_change) the subscription can no longer
        take: recorded for operators (`portalctl payments not-applied`) and sent to the
        merchant, who refunds it."""
        self._record("system", "subscription_payment_not_applied", {
            "order_code": order["code"], "amount_cents": order["amount_cents"], "kind": kind,
        })

    def end_at_period_end(self, made, now):
        """The renewal job ends a subscription canceled at the period's end; `made`: the
        order already made under its renewal's key, if any (paid by a pass that then
        failed: recorded as not applied)."""
        if rules.paid_but_not_applied(made):
            self.record_payment_not_applied(made, "renewal")
        self.cancel_now("buyer", "system", now)

    def renewal_charged(self, order, attempt, now, issue_ahead):
        """billing answered the renewal's `attempt`-th charge with `order`: renewed,
        waiting for its payment, past due or canceled (what happened, as a word)."""
        issued_before = self.waiting_charge_method == self.payment_method
        self.charge_attempts = attempt
        outcome = rules.charge_outcome(order["status"])
        step = rules.after_renewal_charge(outcome, self.payment_method, self.cycle_end, self.first_failed_at, now)
        if step.action == rules.RENEW:
            self.renew(order, "system", now, issue_ahead)
            return "renewed"
        if step.action == rules.CHECK_AGAIN:
            self.waiting_charge_method = self.payment_method
            self.renewal_run_at = step.at
            if not issued_before:
                self._note("system", "renewal_order_issued", order_details(order))
            return "waiting"
        # A boleto/pix still unpaid stays payable until the subscription is canceled.
        self.waiting_charge_method = self.payment_method if outcome == rules.CHARGE_WAITING else None
        return self.attempt_failed(step, order.get("decline_reason"), order["amount_cents"], order["code"], now)

    def renewal_not_charged(self, refusal_fields, now):
        """billing refused to charge the renewal at all (its refusal names
        `refusal_fields`), e.g. a card it cannot use: a failed attempt like a declined
        one, so the buyer and the merchant are told now."""
        request, self.charge_attempts = self.open_renewal_request()
        self.waiting_charge_method = None
        step = rules.after_failed_attempt(self.first_failed_at, now)
        return self.attempt_failed(step, rules.refused_charge_reason(refusal_fields), request["amount_cents"],
                                   None, now)

    def attempt_failed(self, step, decline_reason, amount_cents, order_code, now):
        """The renewal's attempt failed now: canceled after the last retry, else past due
        until the next, told by one `subscription_past_due` (which notifications mails)."""
        if step.action == rules.CANCEL_FOR_NON_PAYMENT:
            self.cancel_now("non_payment", "system", now)
            return "canceled"
        if self.first_failed_at is None:
            self.first_failed_at = now
        if self.status == "active":
            self.status = rules.transition(self.status, "past_due")
        self.next_charge_at = self.renewal_run_at = step.at
        self._record("system", "subscription_past_due", {
            "cycle_number": self.cycle_number + 1, "attempts": self.charge_attempts, "next_retry_at": step.at,
            "decline_reason": decline_reason, "amount_cents": amount_cents, "order_code": order_code,
        })
        return "past_due"


def order_details(order):
    """What an activity entry keeps of billing's order."""
    return {key: order.get(key) for key in ("code", "status", "amount_cents", "decline_reason")}
