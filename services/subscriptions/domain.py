"""Subscription rules as plain functions: no nameko, no SQL.

Problem finders return `{field: [message, ...]}` (empty when all is well) so the
service can answer one `ValidationFailed` naming every field at once.
"""
import calendar
import re
from datetime import timedelta
from urllib.parse import urlsplit

SUBSCRIPTION_STATUSES = ("active", "past_due", "canceled", "expired")
CANCEL_REASONS = ("buyer", "merchant", "non_payment")
CANCEL_MODES = ("immediately", "at_period_end")
PAYMENT_METHODS = ("credit_card", "boleto", "pix")
CARD_FIELDS = ("card_brand", "card_last4", "card_exp", "token")
PERIODICITIES_MONTHS = (1, 2, 3, 6, 12)
# Statuses whose subscription will be charged again.
CHARGEABLE_STATUSES = ("active", "past_due")

ACCENT_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


# -- Brazilian taxpayer ids (CPF: 11 digits, CNPJ: 14 digits), two check digits each.

def _check_digit(digits, weights):
    remainder = sum(int(d) * w for d, w in zip(digits, weights)) % 11
    return 0 if remainder < 2 else 11 - remainder


def cpf_check_digits(first_nine):
    """The two check digits of a CPF whose first nine digits are given."""
    first = _check_digit(first_nine, range(10, 1, -1))
    second = _check_digit(first_nine + str(first), range(11, 1, -1))
    return f"{first}{second}"


def cnpj_check_digits(first_twelve):
    """The two check digits of a CNPJ whose first twelve digits are given."""
    weights = (5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2)
    first = _check_digit(first_twelve, weights)
    second = _check_digit(first_twelve + str(first), (6,) + weights)
    return f"{first}{second}"


def normalize_document(raw):
    """A CPF or CNPJ in its usual punctuation, or ValueError if it is not a valid one."""
    digits = re.sub(r"[.\-/\s]", "", raw or "")
    if not digits.isdigit() or len(set(digits)) == 1:
        raise ValueError("Not a valid CPF or CNPJ.")
    if len(digits) == 11 and cpf_check_digits(digits[:9]) == digits[9:]:
        return f"{digits[:3]}.{digits[3:6]}.{digits[6:9]}-{digits[9:]}"
    if len(digits) == 14 and cnpj_check_digits(digits[:12]) == digits[12:]:
        return f"{digits[:2]}.{digits[2:5]}.{digits[5:8]}/{digits[8:12]}-{digits[12:]}"
    raise ValueError("Not a valid CPF or CNPJ.")


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
