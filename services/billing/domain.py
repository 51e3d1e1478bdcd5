"""Billing rules as plain functions: no nameko, no SQL.

Problem finders return `{field: [message, ...]}` (empty when all is well) so the
service can answer one `ValidationFailed` naming every field at once.
"""
import base64
import re
import secrets

ORDER_STATUSES = ("pending", "pending_confirmation", "paid", "refused", "refunded", "canceled", "expired")
# Statuses in which money has changed hands, so the order has a payment date.
SETTLED_STATUSES = ("paid", "refunded")
PAYMENT_METHODS = ("credit_card", "boleto", "pix")
# The fields each method needs; a method may carry no field of another.
METHOD_FIELDS = {
    "credit_card": ("card_brand", "card_last4"),
    "boleto": ("boleto_line", "boleto_due_date"),
    "pix": ("pix_code",),
}
CARD_ONLY_FIELDS = ("card_exp", "token")

ORDER_CODE_PREFIX = "PED-"
# 5 random bytes are exactly 8 base32 characters: 2**40 codes, no padding.
ORDER_CODE_BYTES = 5
ORDER_CODE = re.compile(r"^PED-[A-Z2-7]{8}$")
BOLETO_LINE_DIGITS = 47


def new_order_code(random_bytes=secrets.token_bytes):
    """A short code buyers can read and say ("PED-7KQ2M4ZA"), from a CSPRNG.

    Random rather than sequential, so a code reveals neither sales volume nor its
    neighbours; the database's unique index settles the rare collision.
    """
    return ORDER_CODE_PREFIX + base64.b32encode(random_bytes(ORDER_CODE_BYTES)).decode("ascii")


def normalize_boleto_line(raw):
    """The 47 digits of a boleto's linha digitável, without its dots and spaces."""
    digits = re.sub(r"[.\s]", "", raw or "")
    if not (digits.isdigit() and len(digits) == BOLETO_LINE_DIGITS):
        raise ValueError(f"A boleto line has {BOLETO_LINE_DIGITS} digits.")
    return digits


def payment_problems(payment):
    """Each method carries its own fields and none of another's."""
    method = payment["method"]
    problems = {
        field: [f"Required for {method}."]
        for field in METHOD_FIELDS[method] if not payment.get(field)
    }
    foreign = [
        field
        for other, fields in METHOD_FIELDS.items() if other != method
        for field in fields
    ]
    if method != "credit_card":
        foreign += CARD_ONLY_FIELDS
    for field in foreign:
        if payment.get(field):
            problems[field] = [f"Not for {method}."]
    return problems


def order_problems(order):
    """Rules an order registered by a checkout must keep, beyond each field's shape."""
    problems = {}
    payment_errors = payment_problems(order["payment"])
    if payment_errors:
        problems["payment"] = payment_errors
    if order["installments"] > 1 and order["payment"]["method"] != "credit_card":
        problems["installments"] = ["Installments are for credit_card only."]
    if order.get("paid_at") and order["status"] not in SETTLED_STATUSES:
        problems["paid_at"] = [f"Only for an order that is {' or '.join(SETTLED_STATUSES)}."]
    if (order.get("subscription_id") is None) != (order.get("cycle_number") is None):
        problems["cycle_number"] = ["An order of a subscription names its cycle, and only such an order."]
    return problems


def paid_at(status, given_paid_at, created_at):
    """When a settled order was paid: as given, or when it was created."""
    if status not in SETTLED_STATUSES:
        return None
    return given_paid_at or created_at
