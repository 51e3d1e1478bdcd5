"""What a buyer may do now, and the next charge, as the subscriptions service answers
them with a subscription (the aggregate's allowed_operations, refusal_for, next_charge)."""
from datetime import timedelta

import pytest

from services.subscriptions.domain.subscription import NextCharge
from support.subscription_states import CYCLE_END, CYCLE_START, merchant, subscription

MID_CYCLE = CYCLE_START + timedelta(days=10)
AFTER_CYCLE = CYCLE_END + timedelta(hours=1)


def allowed(row, now=MID_CYCLE):
    return row.allowed_operations(now)


def test_an_active_subscription_may_change_method_plan_or_cancel():
    assert allowed(subscription(merchant())) == ["change_payment_method", "change_plan", "cancel"]


def test_a_merchant_setting_off_leaves_the_operation_to_its_support():
    row = subscription(merchant(customer_can_change_plan=False, customer_can_cancel=False))
    assert allowed(row) == ["change_payment_method"]
    refusal = row.refusal_for("cancel", MID_CYCLE)
    assert (refusal.code, refusal.message) == (
        "operation_disabled", "Acme Cursos não permite o cancelamento pelo portal. Fale com o atendimento.")


def test_a_renewal_under_way_blocks_a_plan_change_only():
    row = subscription(merchant(), waiting="boleto")
    assert allowed(row) == ["change_payment_method", "cancel"]
    assert row.refusal_for("change_plan", MID_CYCLE).code == "renewal_in_progress"


def test_an_offer_with_no_options_offers_no_plan_change():
    row = subscription(merchant(), options=())
    assert "change_plan" not in allowed(row)
    assert row.refusal_for("change_plan", MID_CYCLE).code == "option_not_offered"


def test_a_past_due_subscription_may_pay_with_another_method_or_cancel():
    assert allowed(subscription(merchant(), "past_due")) == ["change_payment_method", "cancel"]


@pytest.mark.parametrize("status", ["canceled", "expired"])
def test_an_ended_subscription_allows_nothing(status):
    assert allowed(subscription(merchant(), status)) == []


def test_a_scheduled_cancellation_may_be_undone_until_the_period_ends():
    row = subscription(merchant(), cancel_at_period_end=True)
    assert allowed(row) == ["change_payment_method", "change_plan", "undo_cancel"]
    assert "undo_cancel" not in allowed(row, AFTER_CYCLE)
    assert row.refusal_for("undo_cancel", AFTER_CYCLE).code == "period_ended"


def test_a_scheduled_plan_change_may_be_undone_but_not_one_awaiting_its_payment():
    assert allowed(subscription(merchant(), pending="scheduled")) == [
        "change_payment_method", "undo_plan_change", "cancel"]
    awaiting = subscription(merchant(), pending="awaiting_payment")
    assert allowed(awaiting) == ["change_payment_method", "cancel"]
    assert awaiting.refusal_for("undo_plan_change", MID_CYCLE).code == "change_awaiting_payment"


def test_a_scheduled_plan_change_cannot_be_undone_once_its_renewal_is_issued():
    row = subscription(merchant(), pending="scheduled", waiting="boleto")
    assert row.refusal_for("undo_plan_change", MID_CYCLE).code == "renewal_already_issued"


def test_the_next_charge_is_the_price_it_renews_at_less_the_credit_kept():
    assert subscription(merchant()).next_charge() == NextCharge(CYCLE_END, 2990)
    # A scheduled change renews at the new price; the credit comes off first.
    assert subscription(merchant(), pending="scheduled", balance_cents=1000).next_charge() == (
        NextCharge(CYCLE_END, 4990))
    assert subscription(merchant(), balance_cents=5000).next_charge() == NextCharge(CYCLE_END, 0)


def test_no_next_charge_once_it_ends_or_is_set_to_end():
    assert subscription(merchant(), "canceled").next_charge() is None
    assert subscription(merchant(), cancel_at_period_end=True).next_charge() is None
