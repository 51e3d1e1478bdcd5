"""Subscriptions in every state a buyer can find one in, under every combination of
the merchant's self-service settings, as transient rows (no database): for tests that
check that what a page offers is what the service accepts."""
import itertools
from datetime import datetime, timedelta, timezone

from services.subscriptions.models import Merchant, Offer, Subscription

CYCLE_START = datetime(2026, 11, 1, 12, tzinfo=timezone.utc)
CYCLE_END = datetime(2026, 12, 1, 12, tzinfo=timezone.utc)
# Mid-cycle, and after the cycle ended (a renewal not done yet, or a cancellation due).
MOMENTS = (CYCLE_START + timedelta(days=10), CYCLE_END + timedelta(hours=1))

SETTINGS = ("customer_can_change_payment_method", "customer_can_change_plan", "customer_can_cancel")


def merchant(**settings):
    return Merchant(
        id="acme-cursos", name="Acme Cursos", cancel_mode=settings.pop("cancel_mode", "at_period_end"),
        payment_methods_allowed=["credit_card", "boleto", "pix"], support_email="suporte@acme.example.com",
        **{setting: settings.get(setting, True) for setting in SETTINGS},
    )


def offer(offer_id="basico", price_cents=2990, options=("premium",)):
    return Offer(
        merchant_id="acme-cursos", id=offer_id, product_name="Curso Completo", plan_name=f"Plano {offer_id}",
        price_cents=price_cents, periodicity_months=1, max_installments=1, plan_change_options=list(options),
    )


def subscription(merchant_row, status="active", cancel_at_period_end=False, pending=None, waiting=None,
                 balance_cents=0, options=("premium",)):
    """`pending`: None, "scheduled" or "awaiting_payment" (a change to "premium");
    `waiting`: the method of a renewal charge whose outcome is awaited, or None."""
    is_open = status in ("active", "past_due")
    return Subscription(
        id=f"sub-{status}", merchant_id="acme-cursos", external_id="ext-1", offer_id="basico",
        email="ana@example.com", status=status, cancel_reason="buyer" if status == "canceled" else None,
        cancel_at_period_end=cancel_at_period_end, cycle_number=1, cycle_start=CYCLE_START, cycle_end=CYCLE_END,
        next_charge_at=(CYCLE_END if not cancel_at_period_end else None) if is_open else None,
        canceled_at=CYCLE_END if status == "canceled" else None,
        payment_method="credit_card", card_brand="visa", card_last4="4242", card_exp="08/2030",
        payment_token="tok_x", installments=1, balance_cents=balance_cents,
        pending_offer_id="premium" if pending else None, pending_quote_id="q-1" if pending else None,
        pending_change_status=pending, waiting_charge_method=waiting, created_at=CYCLE_START,
        merchant=merchant_row, offer=offer(options=options),
        pending_offer=offer("premium", 5990, ()) if pending else None,
    )


def every_state():
    """(label, subscription, now) for each status × scheduled cancellation × pending
    change × renewal under way × plan options × merchant settings × moment."""
    for status, cancel_at_period_end, pending, waiting, options, allowed, cancel_mode, now in itertools.product(
        ("active", "past_due", "canceled", "expired"), (False, True), (None, "scheduled", "awaiting_payment"),
        (None, "boleto"), (("premium",), ()), itertools.product((False, True), repeat=3),
        ("at_period_end", "immediately"), MOMENTS,
    ):
        if cancel_at_period_end and status != "active":
            continue  # only an active subscription waits for its period's end
        settings = dict(zip(SETTINGS, allowed), cancel_mode=cancel_mode)
        row = subscription(merchant(**settings), status, cancel_at_period_end, pending, waiting, options=options)
        label = (f"{status} cancel_at_period_end={cancel_at_period_end} pending={pending} waiting={waiting} "
                 f"options={options} settings={allowed} {cancel_mode} now={now.isoformat()}")
        yield label, row, now
