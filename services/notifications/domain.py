"""Rules of notifying: which e-mails an event calls for, when to try again and when to
give up, what a login e-mail may keep, and how a webhook is signed."""
import hashlib
import hmac
import math
import smtplib
from datetime import timedelta

MAX_ERROR_LENGTH = 500
REDACTED = "[redacted]"

DEFAULT_LOCALE = "pt_BR"
LOCALES = ("pt_BR", "en")

# E-mail kinds, named after what the buyer learns.
LOGIN_LINK = "login_link"
PLAN_CHANGED = "plan_changed"
PLAN_CHANGE_SCHEDULED = "plan_change_scheduled"
PAYMENT_METHOD_CHANGED = "payment_method_changed"
CANCELLATION_SCHEDULED = "cancellation_scheduled"
CANCELED = "canceled"
RENEWED = "renewed"
CHARGE_FAILED = "charge_failed"
PAST_DUE = "past_due"
ORDER_PAID = "order_paid"
ORDER_REFUNDED = "order_refunded"
BOLETO_ISSUED = "boleto_issued"
PIX_ISSUED = "pix_issued"
# To the merchant's owners, not a buyer: its processor account was set or changed.
PROCESSOR_ACCOUNT_CHANGED = "processor_account_changed"
PROCESSOR_NAMES = {"asaas": "Asaas", "sandbox": "Sandbox (sem cobrança real)", "mercadopago": "Mercado Pago"}

SUBSCRIPTION_EMAILS = {
    "subscription_plan_changed": PLAN_CHANGED,
    "subscription_plan_change_scheduled": PLAN_CHANGE_SCHEDULED,
    "subscription_payment_method_changed": PAYMENT_METHOD_CHANGED,
    "subscription_cancellation_scheduled": CANCELLATION_SCHEDULED,
    "subscription_canceled": CANCELED,
    "subscription_renewed": RENEWED,
    "subscription_past_due": PAST_DUE,
}
ORDER_EMAIL_KINDS = (CHARGE_FAILED, ORDER_PAID, ORDER_REFUNDED, BOLETO_ISSUED, PIX_ISSUED)
ISSUED_EMAILS = {"boleto": BOLETO_ISSUED, "pix": PIX_ISSUED}
# A boleto/pix to pay is born pending from a checkout (`order_created`) or becomes
# pending when the processor answers a charge (`order_awaiting_payment`): one or the other.
ISSUING_EVENTS = ("order_created", "order_awaiting_payment")
# Charges of a subscription's renewal: the first one and its retries.
RENEWAL_ORDER_KINDS = ("renewal", "retry")
# A renewal's receipt comes with `subscription_renewed`, a paid plan change with
# `subscription_plan_changed`: their orders' payment adds no e-mail of its own.
ORDER_KINDS_WITHOUT_PAID_EMAIL = (*RENEWAL_ORDER_KINDS, "plan_change")
# A renewal's failed charge is told by `subscription_past_due` (or `subscription_canceled`
# after the last retry), with the next retry: one e-mail per failed charge, not two.
ORDER_KINDS_WITHOUT_FAILED_EMAIL = RENEWAL_ORDER_KINDS

# What merchants may subscribe their endpoints to: every event about their buyers'
# subscriptions and orders.
WEBHOOK_EVENTS = {
    "subscriptions": (
        "subscription_created", *SUBSCRIPTION_EMAILS,
        "subscription_plan_change_dropped", "subscription_cancellation_undone",
        # The merchant's alone: a paid order to refund.
        "subscription_payment_not_applied",
    ),
    "billing": ("order_created", "order_awaiting_payment", "order_paid", "charge_failed", "order_refunded",
                "refund_failed"),
}
WEBHOOK_EVENT_TYPES = tuple(event_type for types in WEBHOOK_EVENTS.values() for event_type in types)

SIGNATURE_HEADER = "X-Portal-Signature"


def email_kinds(event_type, data):
    """The e-mails (kinds) an event calls for; most events call for none or one."""
    if event_type in SUBSCRIPTION_EMAILS:
        return [SUBSCRIPTION_EMAILS[event_type]]
    if event_type == "charge_failed" and data.get("kind") not in ORDER_KINDS_WITHOUT_FAILED_EMAIL:
        return [CHARGE_FAILED]
    if event_type == "order_paid" and data.get("kind") not in ORDER_KINDS_WITHOUT_PAID_EMAIL:
        return [ORDER_PAID]
    if event_type == "order_refunded":
        return [ORDER_REFUNDED]
    if event_type in ISSUING_EVENTS and data.get("status") == "pending" and data.get("method") in ISSUED_EMAILS:
        return [ISSUED_EMAILS[data["method"]]]
    return []


def email_locale(*sources):
    """`en` when what we know of the buyer says so; Brazilian Portuguese otherwise."""
    for source in sources:
        locale = str((source or {}).get("locale") or "")
        if locale.lower().replace("-", "_").split("_")[0] == "en":
            return "en"
    return DEFAULT_LOCALE


# The pix e-mail's QR, an image part of the message the HTML shows by this Content-ID
# (mail clients block `data:` images).
PIX_QR_CONTENT_ID = "pix-qr@portal-do-cliente"


def inline_qr_codes(kind, facts):
    """The QR codes an e-mail of `kind` shows inline, Content-ID → the text each holds."""
    if kind == PIX_ISSUED and facts.get("pix_code"):
        return {PIX_QR_CONTENT_ID: facts["pix_code"]}
    return {}


def subscription_url(portal_base_url, subscription_id):
    return f"{portal_base_url.rstrip('/')}/assinaturas/{subscription_id}"


def payment_method_url(portal_base_url, subscription_id):
    # The portal asks for a login first when needed, then comes back here.
    return f"{subscription_url(portal_base_url, subscription_id)}/forma-de-pagamento"


def order_url(portal_base_url, code):
    return f"{portal_base_url.rstrip('/')}/pedidos/{code}"


def login_email_expired(expires_at, now):
    """A login e-mail whose link has expired is not worth sending."""
    return now >= expires_at


def minutes_left(expires_at, now):
    """Whole minutes the buyer has, rounded up (a fresh 10-minute link says 10)."""
    return max(1, math.ceil((expires_at - now).total_seconds() / 60))


def error_text(error, secrets=()):
    """An error's text fit to store: short, and without any of `secrets` in it."""
    text = str(error) or type(error).__name__
    # A mail server may quote what it received; whatever it says stays unusable.
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text[:MAX_ERROR_LENGTH]


def retry_delay(attempts, base_seconds, max_seconds):
    """Exponential backoff: base, 2×base, 4×base, ... after the 1st, 2nd, 3rd failure."""
    exponent = min(max(attempts - 1, 0), 60)
    return timedelta(seconds=min(base_seconds * 2 ** exponent, max_seconds))


def next_attempt_at(now, attempts, retry_until, base_seconds, max_seconds):
    """When to try again after `attempts` failures, or None to give up.

    The last try falls on `retry_until` itself, so the whole window is used.
    """
    if now >= retry_until:
        return None
    return min(now + retry_delay(attempts, base_seconds, max_seconds), retry_until)


def smtp_failure_is_permanent(error):
    """5xx answers will not change by retrying; refusals, timeouts and 4xx may."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in error.recipients.values()]
        return bool(codes) and all(code >= 500 for code in codes)
    if isinstance(error, smtplib.SMTPResponseException):
        return error.smtp_code >= 500
    return False


def webhook_answer_ok(status_code):
    return 200 <= status_code < 300


def endpoint_wants(event_types, event_type):
    """An endpoint that names no event types wants them all."""
    return not event_types or event_type in event_types


def signature(secret, timestamp, body):
    """`t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>` for `body` (bytes)."""
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def _first(*values):
    return next((value for value in values if value not in (None, "")), None)


def email_facts(event, subscription=None, order=None, merchant=None, portal_base_url=""):
    """What an e-mail about `event` shows, from the event's data and what the owning
    services answered about its subscription, order and merchant (any may be None; a
    subscription's answer names its merchant too)."""
    data = event["data"]
    subscription, order = subscription or {}, order or {}
    merchant = merchant or _merchant_of(subscription)
    payment = order.get("payment") or {}
    cycle = subscription.get("cycle") or {}
    pending_change = subscription.get("pending_plan_change") or {}
    new_offer = pending_change.get("offer") or {}
    subscription_id = _first(data.get("subscription_id"), order.get("subscription_id"))
    order_code = _first(data.get("order_code"), data.get("code"), order.get("code"))
    base = portal_base_url
    return {
        "merchant": {
            "name": _first(merchant.get("brand_name"), merchant.get("name"), event.get("merchant_id")),
            "support_email": merchant.get("support_email"),
            "support_phone": merchant.get("support_phone"),
            "support_url": merchant.get("support_url"),
        },
        "product_name": _first(order.get("product_name"), subscription.get("product_name")),
        "plan_name": subscription.get("plan_name"),
        "price_cents": subscription.get("price_cents"),
        "periodicity_months": subscription.get("periodicity_months"),
        "new_plan_name": new_offer.get("plan_name"),
        "new_price_cents": new_offer.get("price_cents"),
        "takes_effect": data.get("takes_effect"),
        "amount_cents": _first(data.get("charge_cents"), data.get("amount_cents"), order.get("amount_cents")),
        "installments": order.get("installments"),
        # A refund's: all the order's confirmed refunds, and what was paid.
        "refunded_cents": data.get("refunded_cents"),
        "order_amount_cents": _first(data.get("order_amount_cents"), order.get("amount_cents")),
        "payment_method": _payment_method(data, subscription, order),
        "order_code": order_code,
        "paid_at": _first(order.get("paid_at"), event.get("occurred_at")),
        "boleto_line": payment.get("boleto_line"),
        "due_date": payment.get("boleto_due_date"),
        "pix_code": payment.get("pix_code"),
        "cycle_start": _first(data.get("cycle_start"), cycle.get("start")),
        "cycle_end": _first(data.get("cycle_end"), cycle.get("end")),
        "next_charge_at": subscription.get("next_charge_at"),
        # When a scheduled change or cancellation happens: the event says, else the cycle end.
        "effective_at": _first(data.get("effective_at"), pending_change.get("effective_at"), cycle.get("end")),
        "next_retry_at": data.get("next_retry_at"),
        "cancel_reason": _first(data.get("reason"), subscription.get("cancel_reason")),
        "decline_reason": _first(data.get("decline_reason"), order.get("decline_reason")),
        "portal_url": base.rstrip("/"),
        "subscription_url": subscription_url(base, subscription_id) if subscription_id else None,
        "payment_method_url": payment_method_url(base, subscription_id) if subscription_id else None,
        "order_url": order_url(base, order_code) if order_code else None,
    }


def account_change_facts(event, merchant, portal_base_url):
    """What the owners' e-mail about a processor account change shows."""
    data = event["data"]
    return {
        **email_facts(event, merchant=merchant, portal_base_url=portal_base_url),
        "processor_name": PROCESSOR_NAMES.get(data.get("processor"), data.get("processor")),
        "environment": data.get("environment"),
        "api_key_hint": data.get("api_key_hint"),
        "change": data.get("change"),
    }


def _merchant_of(subscription):
    """The merchant as a subscription's answer names it, its support channels nested."""
    merchant = subscription.get("merchant") or {}
    support = merchant.get("support") or {}
    return {"name": merchant.get("name"), "brand_name": merchant.get("brand_name"),
            "support_email": support.get("email"), "support_phone": support.get("phone"),
            "support_url": support.get("url")}


def _payment_method(data, subscription, order):
    """How it is (or was) paid: the order's own payment; else what the event says the
    subscription now pays with; else the subscription's method."""
    if (order.get("payment") or {}).get("method"):
        return order["payment"]
    if data.get("method"):
        return {"method": data["method"], "card_brand": data.get("card_brand"), "card_last4": data.get("card_last4")}
    return subscription.get("payment_method")
