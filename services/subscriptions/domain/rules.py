"""Subscription rules as plain functions: no nameko, no SQL, no state.

Problem finders return `{field: [message, ...]}` (empty when all is well) so the
service can answer one `ValidationFailed` naming every field at once.
"""
import calendar
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from urllib.parse import urlsplit

# Brazilian taxpayer ids (CPF, CNPJ), given by their names here too.
from services.common.documents import cnpj_check_digits, cpf_check_digits, normalize_document  # noqa: F401

SUBSCRIPTION_STATUSES = ("active", "past_due", "canceled", "expired")
# Who or what ended a canceled subscription.
CANCEL_REASONS = ("buyer", "merchant", "non_payment")
# Why the buyer says they cancel (optional, with free text).
CANCEL_FEEDBACK = (
    "too_expensive", "not_using", "missing_features", "switching_service", "technical_issues", "other",
)
CANCEL_MODES = ("immediately", "at_period_end")
PAYMENT_METHODS = ("credit_card", "boleto", "pix")
CARD_FIELDS = ("card_brand", "card_last4", "card_exp", "token")
PERIODICITIES_MONTHS = (1, 2, 3, 6, 12)
# Statuses whose subscription will be charged again.
CHARGEABLE_STATUSES = ("active", "past_due")

ACCENT_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


# -- time

def add_months(moment, months):
    """The same day and time `months` calendar months later, clamped to the month's end.

    31 January + 1 month is 28 (or 29) February: cycles follow the calendar, as
    buyers expect a monthly charge on "the same day" each month.
    """
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def initial_next_charge_at(status, cycle_end):
    """When a newly registered subscription is charged next (None: never again).

    An active one renews at the end of its cycle; a past-due one has already failed
    that renewal, so its first retry comes a day later.
    """
    if status not in CHARGEABLE_STATUSES:
        return None
    if status == "past_due":
        return cycle_end + timedelta(days=1)
    return cycle_end


# -- merchants and offers

def is_origin(value):
    """True for a bare web origin such as `https://shop.example.com[:port]`."""
    parts = urlsplit(value)
    try:
        parts.port  # raises on a port that is not a number in range
    except ValueError:
        return False
    return (
        parts.scheme in ("https", "http")
        and bool(parts.hostname)
        and "@" not in parts.netloc
        and value == f"{parts.scheme}://{parts.netloc}"
    )


def merchant_problems(merchant):
    problems = {}
    bad_origins = [origin for origin in merchant.get("allowed_origins", []) if not is_origin(origin)]
    if bad_origins:
        problems["allowed_origins"] = [f"Not a bare origin (scheme://host[:port]): {', '.join(bad_origins)}."]
    if merchant.get("customer_can_change_payment_method") and not merchant.get("payment_methods_allowed"):
        problems["payment_methods_allowed"] = ["Name at least one method when buyers may change it."]
    return problems


def offer_problems(offer, same_merchant_offer_ids):
    """Rules an offer must keep; `same_merchant_offer_ids` are the merchant's offers."""
    problems = {}
    if offer["max_installments"] > offer["periodicity_months"]:
        # A cycle's charge cannot be split over more months than the cycle lasts.
        problems["max_installments"] = [
            f"At most {offer['periodicity_months']} for a {offer['periodicity_months']}-month periodicity."
        ]
    options = offer.get("plan_change_options") or []
    if offer["id"] in options:
        problems.setdefault("plan_change_options", []).append("An offer cannot switch to itself.")
    unknown = [option for option in options if option not in same_merchant_offer_ids]
    if unknown:
        problems.setdefault("plan_change_options", []).append(
            f"Not offers of this merchant: {', '.join(unknown)}."
        )
    return problems


OFFER_STATUSES = ("active", "archived")
ACTIVE, ARCHIVED = OFFER_STATUSES
# What its merchant (or an operator) may change of an offer; its id is for good.
OFFER_TERMS = (
    "product_name", "plan_name", "price_cents", "periodicity_months", "max_installments", "plan_change_options",
    "payment_methods_accepted", "status",
)
# The terms an offer's subscriptions renew on: an offer in use keeps them, so that
# renewals are never silently repriced (a new price is a new offer).
TERMS_KEPT_IN_USE = {"price_cents": "price", "periodicity_months": "periodicity"}


def offer_change_problems(current, changes, in_use):
    """The kept terms `changes` would change on an offer that has subscriptions."""
    if not in_use:
        return {}
    return {
        field: [f"An offer with subscriptions keeps its {term}: create a new offer for a new {term}."]
        for field, term in TERMS_KEPT_IN_USE.items()
        if field in changes and changes[field] != current[field]
    }


def accepted_methods(merchant_allowed, offer_accepted):
    """The methods an offer takes now: its own (None: all) among those its merchant allows now."""
    return [method for method in merchant_allowed if not offer_accepted or method in offer_accepted]


def accepted_methods_problems(accepted, merchant_allowed):
    """An offer accepts only methods its merchant allows."""
    outside = [method for method in accepted if method not in merchant_allowed]
    if outside:
        return {"payment_methods_accepted": [f"Not allowed for this merchant: {', '.join(outside)}."]}
    return {}


def sale_problems(offer, method):
    """Why `offer` (status, payment_methods_accepted) cannot be sold paid with `method`
    now; an offer given no methods of its own holds a checkout's sale to none."""
    if offer.status != ACTIVE:
        return {"offer_id": ["This offer is archived: it takes no new sales."]}
    if offer.payment_methods_accepted and method not in offer.payment_methods_accepted:
        return {"payment.method": [f"This offer accepts {', '.join(offer.payment_methods_accepted)}."]}
    return {}


# -- subscriptions

def payment_problems(payment):
    """A card is referred to by its processor token, brand, last four and expiry only."""
    problems = {}
    if payment["method"] == "credit_card":
        for field in CARD_FIELDS:
            if not payment.get(field):
                problems[field] = ["Required for credit_card."]
    else:
        for field in CARD_FIELDS:
            if payment.get(field):
                problems[field] = [f"Only for credit_card, not {payment['method']}."]
    return problems


def intake_problems(subscription, merchant_known, offer):
    """Every field of a checkout's subscription that breaks a rule against its merchant
    and offer (None when the offer is not the merchant's)."""
    problems = {}
    if not merchant_known:
        problems["merchant_id"] = ["Unknown merchant."]
    if offer is None:
        problems["offer_id"] = ["Not an offer of this merchant."]
    else:
        problems.update(subscription_problems(subscription, offer.max_installments))
        # A subscription a checkout already ended records the past: no rule of new sales.
        if subscription["status"] in CHARGEABLE_STATUSES:
            problems.update(sale_problems(offer, subscription["payment"]["method"]))
    return problems


def subscription_problems(subscription, max_installments):
    """Rules a subscription registered by a checkout must keep against its offer."""
    problems = {}
    if subscription["cycle_end"] <= subscription["cycle_start"]:
        problems["cycle_end"] = ["Must be after cycle_start."]
    installments = subscription["installments"]
    if installments > max_installments:
        problems["installments"] = [f"The offer allows at most {max_installments}."]
    elif installments > 1 and subscription["payment"]["method"] != "credit_card":
        problems["installments"] = ["Installments are for credit_card only."]
    if subscription.get("cancel_reason") and subscription["status"] != "canceled":
        problems["cancel_reason"] = ["Only for a canceled subscription."]
    return problems


@dataclass(frozen=True)
class Refusal:
    """A rule says no: a stable code and the message the buyer reads."""

    code: str
    message: str


# -- money and time, exactly

ONE_MICROSECOND = timedelta(microseconds=1)


def round_half_up(amount):
    """Whole cents of an exact amount of cents (int or Fraction), halves away from zero."""
    amount = Fraction(amount)
    magnitude = abs(amount)
    cents = (2 * magnitude.numerator + magnitude.denominator) // (2 * magnitude.denominator)
    return -cents if amount < 0 else cents


def remaining_share(cycle_start, cycle_end, now):
    """(cycle_end - now) / (cycle_end - cycle_start), exactly, within [0, 1].

    Counted in microseconds, a datetime's resolution, so no float ever rounds it.
    """
    total = (cycle_end - cycle_start) // ONE_MICROSECOND
    left = (cycle_end - now) // ONE_MICROSECOND
    return Fraction(min(max(left, 0), total), total)


def whole_months_between(start, end):
    """How many whole calendar months fit from `start` to `end` (0 if none)."""
    if end <= start:
        return 0
    # The calendar difference is an upper bound; a day or time earlier in the month takes one off.
    months = (end.year - start.year) * 12 + end.month - start.month
    while months > 0 and add_months(start, months) > end:
        months -= 1
    return months


def apply_balance(price_cents, balance_cents):
    """What a renewal charges when a balance is kept, and the balance left after it."""
    used = min(price_cents, balance_cents)
    return price_cents - used, balance_cents - used


# -- plan change

QUOTE_VALIDITY = timedelta(minutes=10)

UPGRADE = "upgrade"  # same periodicity, higher price: the difference for the rest of the cycle, now
NEW_CYCLE = "new_cycle"  # longer periodicity: a new cycle starts now; the rest of the old one is credit
SCHEDULED = "scheduled"  # lower price, or shorter periodicity: at the end of the cycle, nothing now

TAKES_EFFECT_NOW = "now"
TAKES_EFFECT_ON_PAYMENT = "on_payment"  # an immediate change paid by boleto/pix
TAKES_EFFECT_AT_CYCLE_END = "cycle_end"


@dataclass(frozen=True)
class OfferTerms:
    price_cents: int
    periodicity_months: int
    max_installments: int = 1


@dataclass(frozen=True)
class PlanChangeQuote:
    kind: str
    # The unused part of the current cycle at the current price.
    credit_cents: int
    charge_cents: int
    # Kept for the next renewals once the change applies (any earlier balance included).
    balance_cents: int
    max_installments: int
    takes_effect: str
    # Now, the cycle end, or None while a boleto/pix is unpaid.
    effective_at: datetime | None
    # The cycle the subscription is in once the change applies.
    cycle_start: datetime
    cycle_end: datetime
    next_renewal_at: datetime
    next_renewal_cents: int


def classify_plan_change(current, new):
    """UPGRADE, NEW_CYCLE or SCHEDULED for a switch from `current` to `new` (OfferTerms)."""
    if new.periodicity_months > current.periodicity_months:
        return NEW_CYCLE
    if new.periodicity_months == current.periodicity_months and new.price_cents > current.price_cents:
        return UPGRADE
    return SCHEDULED


def installment_cap(kind, new, now, cycle_end, payment_method, charge_cents):
    """At most `min(new max_installments, whole months from now to the next cycle start)`
    installments, or the months of the new cycle when one starts now; never below 1,
    and 1 when there is no card charge to split."""
    if kind == SCHEDULED or payment_method != "credit_card" or charge_cents == 0:
        return 1
    months = new.periodicity_months if kind == NEW_CYCLE else whole_months_between(now, cycle_end)
    return max(1, min(new.max_installments, months))


def quote_plan_change(current, new, cycle_start, cycle_end, now, payment_method, balance_cents=0):
    """The terms of switching from offer `current` to `new` at `now` (DESIGN.md, "Plan change")."""
    kind = classify_plan_change(current, new)
    remaining = remaining_share(cycle_start, cycle_end, now)
    unused = current.price_cents * remaining
    balance = balance_cents
    if kind == SCHEDULED:
        charge = 0
        new_cycle = (cycle_end, add_months(cycle_end, new.periodicity_months))
    elif kind == UPGRADE:
        charge = round_half_up((new.price_cents - current.price_cents) * remaining)
        new_cycle = (cycle_start, cycle_end)
    else:
        due = new.price_cents - unused
        charge = max(round_half_up(due), 0)
        # Credit beyond the new price is kept for the next renewals.
        balance += max(round_half_up(-due), 0)
        new_cycle = (now, add_months(now, new.periodicity_months))

    if kind == SCHEDULED:
        takes_effect, effective_at = TAKES_EFFECT_AT_CYCLE_END, cycle_end
    elif charge > 0 and payment_method != "credit_card":
        takes_effect, effective_at = TAKES_EFFECT_ON_PAYMENT, None
    else:
        takes_effect, effective_at = TAKES_EFFECT_NOW, now
    # A scheduled change starts its first cycle, and charges it, at the old cycle's end.
    next_renewal_at = new_cycle[0] if kind == SCHEDULED else new_cycle[1]
    return PlanChangeQuote(
        kind=kind,
        credit_cents=round_half_up(unused),
        charge_cents=charge,
        balance_cents=balance,
        max_installments=installment_cap(kind, new, now, cycle_end, payment_method, charge),
        takes_effect=takes_effect,
        effective_at=effective_at,
        cycle_start=new_cycle[0],
        cycle_end=new_cycle[1],
        next_renewal_at=next_renewal_at,
        next_renewal_cents=apply_balance(new.price_cents, balance)[0],
    )


def plan_change_refusal(status, has_pending_change, renewal_order_issued, offer_id, plan_change_options):
    """Why a plan change to `offer_id` (None: to any offer) cannot be quoted or
    confirmed now, or None."""
    if status != "active":
        return Refusal("subscription_not_active", "Só é possível trocar o plano de uma assinatura ativa.")
    if has_pending_change:
        return Refusal(
            "change_already_pending",
            "Já existe uma troca de plano pendente. Desfaça-a antes de escolher outro plano.",
        )
    if renewal_order_issued:
        # Its boleto/pix (or a card charge still being confirmed) carries the current plan's price.
        return Refusal(
            "renewal_in_progress", "A renovação desta assinatura está em andamento; troque de plano depois dela.",
        )
    offered = bool(plan_change_options) if offer_id is None else offer_id in plan_change_options
    if not offered:
        return OPTION_NOT_OFFERED
    return None


OPTION_NOT_OFFERED = Refusal("option_not_offered", "Este plano não está entre as opções de troca desta assinatura.")


def archived_option_refusal(offer):
    """An archived offer is no plan-change option, even if one still names it."""
    return OPTION_NOT_OFFERED if offer.status != ACTIVE else None


def installments_refusal(installments, cap):
    if installments > cap:
        plural = "parcela" if cap == 1 else "parcelas"
        return Refusal("installments_above_cap", f"Em até {cap}x: escolha no máximo {cap} {plural}.")
    return None


def undo_plan_change_refusal(pending_change_status, renewal_order_issued, cycle_end, now):
    if pending_change_status is None:
        return Refusal("no_pending_change", "Não há troca de plano agendada para desfazer.")
    if pending_change_status != SCHEDULED:
        return Refusal(
            "change_awaiting_payment", "A troca aguarda o pagamento já emitido e não pode ser desfeita.",
        )
    if now >= cycle_end:
        return Refusal("period_ended", "O período já terminou; a troca não pode mais ser desfeita.")
    if renewal_order_issued:
        # The next cycle's boleto/pix already carries the new plan's price.
        return Refusal(
            "renewal_already_issued", "A renovação com o novo plano já foi emitida; a troca não pode mais ser desfeita.",
        )
    return None


# -- the subscription's lifecycle

# Which status may follow which; canceled and expired are final.
TRANSITIONS = {
    "active": ("past_due", "canceled", "expired"),
    "past_due": ("active", "canceled"),
    "canceled": (),
    "expired": (),
}


class IllegalTransition(ValueError):
    pass


def transition(status, new_status):
    """`new_status` if a subscription may go there from `status`, else IllegalTransition."""
    if new_status not in TRANSITIONS[status]:
        raise IllegalTransition(f"A subscription cannot go from {status} to {new_status}.")
    return new_status


def is_open(status):
    """Still being charged: buyers may change, cancel or pay it."""
    return status in CHARGEABLE_STATUSES


CANCEL_NOW = "now"
CANCEL_AT_PERIOD_END = "at_period_end"
# Who acts on a subscription: its buyer, its merchant for the buyer (support, with the
# API key), or the portal itself (renewals, payments).
BUYER, MERCHANT, SYSTEM = "buyer", "merchant", "system"


def cancel_mode_of(at_period_end):
    """The cancel mode (CANCEL_MODES) a cancellation asked at the period's end, or now, follows."""
    return "at_period_end" if at_period_end else "immediately"


def cancel_refusal(status, cancel_at_period_end):
    if not is_open(status):
        return Refusal("subscription_not_active", "Esta assinatura já não está ativa.")
    if cancel_at_period_end:
        return Refusal("cancellation_already_scheduled", "O cancelamento já está agendado para o fim do período.")
    return None


def cancellation_timing(status, cancel_mode):
    """CANCEL_NOW or CANCEL_AT_PERIOD_END by the merchant's mode; a past-due subscription
    has no paid period left to wait for."""
    if cancel_mode == "at_period_end" and status == "active":
        return CANCEL_AT_PERIOD_END
    return CANCEL_NOW


def undo_cancel_refusal(status, cancel_at_period_end, cycle_end, now):
    if status != "active" or not cancel_at_period_end:
        return Refusal("no_scheduled_cancellation", "Não há cancelamento agendado para desfazer.")
    if now >= cycle_end:
        return Refusal("period_ended", "O período já terminou; o cancelamento não pode mais ser desfeito.")
    return None


def payment_method_refusal(status, method, payment_methods_allowed):
    """Why the payment method cannot change to `method` (None: to any) now, or None."""
    if not is_open(status):
        return Refusal("subscription_not_active", "Esta assinatura já não está ativa.")
    accepted = bool(payment_methods_allowed) if method is None else method in payment_methods_allowed
    if not accepted:
        return Refusal("method_not_allowed", "Esta forma de pagamento não é aceita para esta assinatura.")
    return None


# -- renewal

RETRY_AFTER_DAYS = (1, 3, 5)


def renewal_run_at(payment_method, due_at, issue_ahead):
    """When the renewal job takes up a renewal due at `due_at`: cards are charged on the
    due date; a boleto/pix order is issued `issue_ahead` earlier, so it can be paid in time."""
    return due_at if payment_method == "credit_card" else due_at - issue_ahead


def initial_renewal_run_at(status, payment_method, next_charge_at, issue_ahead):
    """When the renewal job first takes up a registered subscription: a past-due one at
    its next retry, an active one as `renewal_run_at` says."""
    if next_charge_at is None or status == "past_due":
        return next_charge_at
    return renewal_run_at(payment_method, next_charge_at, issue_ahead)


def next_retry_at(first_failed_at, failed_attempt_at):
    """The retry after an attempt that failed at `failed_attempt_at`: the first of 1, 3
    and 5 days after the renewal's first failed attempt still to come; None after the
    last (the subscription is canceled).

    Counted from that attempt, not from the due date: a subscription taken up late is
    charged once, then retried on later days, never at once (a retry a pass could not
    make in time is not made up with another in the same pass).
    """
    for days in RETRY_AFTER_DAYS:
        retry_at = first_failed_at + timedelta(days=days)
        if retry_at > failed_attempt_at:
            return retry_at
    return None


def renewed_cycle_start(cycle_end, periodicity_months, first_attempt_at):
    """Where the cycle paid by a renewal starts: where the last one ended, unless that
    whole cycle was already over at the renewal's first attempt; then one cycle from
    that attempt, so the cycles missed meanwhile are never billed."""
    if add_months(cycle_end, periodicity_months) <= first_attempt_at:
        return first_attempt_at
    return cycle_end


# Why a renewal failed when billing refused to make its charge at all: the card on file
# is not one it can charge for this buyer, or (a request it finds invalid) anything else.
PAYMENT_METHOD_UNUSABLE = "payment_method_unusable"
CHARGE_NOT_ACCEPTED = "charge_not_accepted"


def refused_charge_reason(refusal_fields):
    """The `decline_reason` of a renewal charge billing refused, by the fields its
    refusal names."""
    if "payment_token" in refusal_fields or "method" in refusal_fields:
        return PAYMENT_METHOD_UNUSABLE
    return CHARGE_NOT_ACCEPTED


def charge_key(subscription_id, cycle_number, attempt):
    """Billing's idempotency key of the `attempt`-th charge (from 1) of a cycle."""
    if attempt == 1:
        return f"renewal:{subscription_id}:{cycle_number}"
    return f"retry:{subscription_id}:{cycle_number}:{attempt - 1}"


def plan_change_key(quote_id):
    return f"plan_change:{quote_id}"


def left_to_the_renewal_job(order):
    """Whether billing's report of `order` (an `order_paid` or `charge_failed`) is the
    renewal job's own first charge, settled in billing's answer to the job: the job
    acts on that answer, or asks again under the same key, so the event changes nothing."""
    return order.get("kind") == "renewal" and bool(order.get("settled_at_charge"))


CHARGE_PAID = "paid"
CHARGE_FAILED = "failed"
CHARGE_WAITING = "waiting"  # a boleto/pix not paid yet, or a card answer not known yet


def charge_outcome(order_status):
    """What billing's order status means for the charge that created it."""
    if order_status == "paid":
        return CHARGE_PAID
    if order_status in ("pending", "pending_confirmation"):
        return CHARGE_WAITING
    return CHARGE_FAILED


def paid_but_not_applied(order):
    """Whether a subscription that ends without its renewal leaves `order` (the order
    already made under that renewal's key, or None) paid and not applied: money taken
    for a cycle that will not come, to be recorded and refunded."""
    return order is not None and charge_outcome(order["status"]) == CHARGE_PAID


# An unknown card answer is settled by billing's reconciler; ask again after this long.
CARD_RECHECK_AFTER = timedelta(hours=1)

RENEW = "renew"
CHECK_AGAIN = "check_again"  # nothing changes until the charge's outcome is known
RETRY_LATER = "retry_later"  # past due until the next retry
CANCEL_FOR_NON_PAYMENT = "cancel_for_non_payment"


@dataclass(frozen=True)
class RenewalStep:
    action: str
    # When the renewal job takes the subscription up again (None: never).
    at: datetime | None = None


def after_renewal_charge(outcome, payment_method, due_at, first_failed_at, now):
    """What follows a renewal charge due at `due_at`, attempted `now`; `first_failed_at`:
    when an earlier attempt at this renewal first failed (None: none did).

    Paid: the next cycle. A card whose answer is unknown: ask again soon. A boleto/pix
    issued ahead: wait for its payment until the due date. Refused, or still unpaid on
    or after the due date: past due until the next retry (counted from the first failed
    attempt, this one if none failed before), canceled after the last.
    """
    if outcome == CHARGE_PAID:
        return RenewalStep(RENEW)
    if outcome == CHARGE_WAITING and payment_method == "credit_card":
        return RenewalStep(CHECK_AGAIN, now + CARD_RECHECK_AFTER)
    if outcome == CHARGE_WAITING and now < due_at:
        return RenewalStep(CHECK_AGAIN, due_at)
    return after_failed_attempt(first_failed_at, now)


def after_failed_attempt(first_failed_at, now):
    """Past due until the next retry, or canceled after the last (see `next_retry_at`)."""
    retry_at = next_retry_at(first_failed_at or now, now)
    if retry_at is None:
        return RenewalStep(CANCEL_FOR_NON_PAYMENT)
    return RenewalStep(RETRY_LATER, retry_at)


# -- buyer idempotency keys

# A request still "running" after this long was abandoned (its process died); a repeat takes it over.
ABANDONED_AFTER = timedelta(minutes=2)

# The merchant scope of the buyer's own login, which no merchant scoped (a merchant's id is
# a slug, never empty).
UNSCOPED = ""

REPLAY = "replay"
KEY_REUSED = "key_reused"
IN_PROGRESS = "in_progress"
TAKE_OVER = "take_over"


def request_owner(identity):
    """Whose Idempotency-Key a buyer request's is: (e-mail, merchant scope).

    A merchant's SSO session sees that merchant only, and the buyer's own login every
    merchant, so each scope keeps its own keys: the same key from another scope is
    another request, and never gets this scope's answer.
    """
    merchant_id = identity["merchant_id"]
    return identity["email"], UNSCOPED if merchant_id is None else merchant_id


def request_fingerprint(operation, arguments):
    """A digest of what a request asked for, to tell a repeat from a different request."""
    canonical = json.dumps([operation, arguments], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def repeated_request(stored_fingerprint, stored_status, started_at, fingerprint, now):
    """What to do with a request whose idempotency key was seen before."""
    if stored_fingerprint != fingerprint:
        return KEY_REUSED
    if stored_status == "done":
        return REPLAY
    if now - started_at >= ABANDONED_AFTER:
        return TAKE_OVER
    return IN_PROGRESS
