"""The renewal job's batch, against the unit of work and billing in memory: one
`charge_batch` call per batch, under each renewal's own key."""
from datetime import datetime, timedelta, timezone

import pytest

from services.common.errors import RuleRefused
from services.subscriptions import handlers
from services.subscriptions.domain import commands
from support.subscriptions_testkit import NOW, identity

DAY = timedelta(days=1)


def run_pass(uow, ports, batch_size=50):
    """One pass: every batch until none is left; what happened, counted."""
    command = commands.RenewDueBatch(batch_size, 30, handlers.ClaimPosition())
    summary = {}
    while (steps := handlers.renew_due_batch(command, uow, ports)) is not None:
        for step, count in steps.items():
            summary[step] = summary.get(step, 0) + count
    return summary


def test_a_card_subscription_renews_on_its_due_date(uow, ports, subscribe, ledger, clock):
    subscription = subscribe("acme-basico")
    first_end = subscription.cycle_end
    clock.now = first_end - timedelta(seconds=1)
    assert run_pass(uow, ports) == {} and ledger.requests == []
    clock.now = first_end

    assert run_pass(uow, ports) == {"renewed": 1}

    [charge] = ledger.requests
    assert (charge["idempotency_key"], charge["kind"], charge["cycle_number"]) == (
        f"renewal:{subscription.id}:2", "renewal", 2)
    assert (subscription.cycle_number, subscription.cycle_start, subscription.next_charge_at) == (
        2, first_end, subscription.cycle_end)
    assert uow.event_types() == ["subscription_renewed"]


def test_a_refused_renewal_is_retried_after_one_three_and_five_days_then_canceled(
        uow, ports, subscribe, ledger, clock):
    subscription = subscribe("acme-basico")
    due = subscription.cycle_end
    ledger.card_answer = "refused"
    for days, step in [(0, "past_due"), (1, "past_due"), (3, "past_due"), (5, "canceled")]:
        clock.now = due + days * DAY
        assert run_pass(uow, ports) == {step: 1}
    assert [request["idempotency_key"].split(":")[0] for request in ledger.requests] == [
        "renewal", "retry", "retry", "retry"]
    assert (subscription.status, subscription.cancel_reason) == ("canceled", "non_payment")
    past_due = [data for event_type, data in uow.events if event_type == "subscription_past_due"]
    assert [data["next_retry_at"] for data in past_due] == [due + DAY, due + 3 * DAY, due + 5 * DAY]
    assert past_due[0]["decline_reason"] == "insufficient_funds"


def test_a_card_billing_cannot_use_is_a_failed_attempt_of_its_subscription_alone(
        uow, ports, subscribe, ledger, clock):
    unusable = subscribe("acme-basico")
    other = subscribe("acme-premium")
    ledger.unusable_tokens.add(unusable.payment_token)
    other.payment_token = "tok_other"
    clock.now = max(unusable.cycle_end, other.cycle_end)
    assert run_pass(uow, ports) == {"past_due": 1, "renewed": 1}
    assert (unusable.status, unusable.charge_attempts) == ("past_due", 1)
    [(_, data)] = [event for event in uow.events if event[0] == "subscription_past_due"]
    assert (data["decline_reason"], data["order_code"]) == ("payment_method_unusable", None)


def test_an_unknown_card_answer_is_asked_again_under_the_same_key(uow, ports, subscribe, ledger, clock):
    subscription = subscribe("acme-basico")
    clock.now = subscription.cycle_end
    ledger.card_answer = "pending_confirmation"
    assert run_pass(uow, ports) == {"waiting": 1}
    assert subscription.renewal_run_at == clock.now + timedelta(hours=1)
    ledger.orders[f"renewal:{subscription.id}:2"]["status"] = "paid"
    clock.now += timedelta(hours=1)
    assert run_pass(uow, ports) == {"renewed": 1}
    assert {request["idempotency_key"] for request in ledger.requests} == {f"renewal:{subscription.id}:2"}
    assert [entry[2] for entry in uow.activity] == ["renewal_order_issued", "renewed"]


def test_a_boleto_is_issued_ahead_and_never_twice(uow, ports, subscribe, ledger, clock):
    subscription = subscribe("acme-basico", payment={"method": "boleto"})
    due = subscription.cycle_end
    clock.now = due - ports.issue_ahead
    assert run_pass(uow, ports) == {"waiting": 1}
    assert ledger.requests[0]["due_at"] == due.isoformat()
    # Its boleto carries the current price: no plan change until it is settled, none offered.
    under_way = pytest.raises(RuleRefused, handlers.quote_plan_change,
                              commands.QuotePlanChange(identity(), subscription.id, "acme-premium"), uow, ports)
    assert under_way.value.code == "renewal_in_progress"
    assert subscription.allowed_operations(clock.now) == ["change_payment_method", "cancel"]
    clock.now = due
    assert run_pass(uow, ports) == {"past_due": 1}
    # Still payable: asked about again under its key, never issued anew.
    assert len(ledger.orders) == 1 and subscription.waiting_charge_method == "boleto"


def test_a_scheduled_downgrade_takes_effect_with_the_renewal(uow, ports, subscribe, ledger, clock):
    subscription = subscribe("acme-premium")
    quote = handlers.quote_plan_change(commands.QuotePlanChange(identity(), subscription.id, "acme-basico"),
                                       uow, ports)
    handlers.change_plan(commands.ChangePlan(identity(), subscription.id, quote.id), uow, ports)
    clock.now = subscription.cycle_end
    assert run_pass(uow, ports) == {"renewed": 1}
    assert ledger.requests[0]["amount_cents"] == 2990
    assert (subscription.offer_id, subscription.pending_change_status, quote.status) == (
        "acme-basico", None, "applied")
    assert uow.event_types()[-2:] == ["subscription_plan_changed", "subscription_renewed"]


def test_a_cancellation_at_period_end_ends_it_then_without_a_charge(uow, ports, subscribe, ledger, clock):
    subscription = subscribe("acme-basico")
    handlers.cancel(commands.Cancel(identity(), subscription.id), uow, ports)
    clock.now = subscription.cycle_end
    assert run_pass(uow, ports) == {"canceled": 1}
    assert ledger.requests == [] and (subscription.status, subscription.cancel_reason) == ("canceled", "buyer")


def test_a_renewal_paid_but_not_applied_before_a_cancellation_is_recorded(uow, ports, subscribe, ledger, clock):
    subscription = subscribe("acme-basico")
    # A pass charged it, then its transaction failed; the buyer then canceled.
    ports.billing.charge(subscription.open_renewal_request()[0])
    handlers.cancel(commands.Cancel(identity(), subscription.id), uow, ports)
    clock.now = subscription.cycle_end
    assert run_pass(uow, ports) == {"canceled": 1}
    assert uow.event_types()[-2:] == ["subscription_payment_not_applied", "subscription_canceled"]


def test_a_batch_billing_does_not_answer_changes_nothing(uow, ports, subscribe, ledger, clock):
    subscription = subscribe("acme-basico")
    clock.now = subscription.cycle_end
    ledger.lose_batch_answers = True
    assert run_pass(uow, ports) == {"left_for_next_pass": 1}
    assert (subscription.cycle_number, subscription.charge_attempts, uow.events) == (1, 0, [])
    ledger.lose_batch_answers = False
    assert run_pass(uow, ports) == {"renewed": 1}
    assert len(ledger.orders) == 1


@pytest.mark.parametrize("batch_size", [1, 2, 50])
def test_a_pass_visits_each_due_subscription_once_whatever_the_batch_size(
        uow, ports, subscribe, ledger, clock, batch_size):
    subscriptions = [subscribe("acme-basico") for _ in range(3)]
    clock.now = max(subscription.cycle_end for subscription in subscriptions)
    ledger.card_answer = "refused"
    assert run_pass(uow, ports, batch_size) == {"past_due": 3}
    assert len(ledger.requests) == 3


def test_a_renewal_taken_up_days_late_is_charged_once_and_retried_from_that_attempt(
        uow, ports, subscribe, ledger, clock):
    subscription = subscribe("acme-basico")
    late = subscription.cycle_end + 3 * DAY
    clock.now = late
    ledger.card_answer = "refused"
    assert run_pass(uow, ports) == {"past_due": 1}
    assert run_pass(uow, ports) == {} and len(ledger.requests) == 1
    assert subscription.next_charge_at == late + DAY
    for moment, expected in [(late + DAY - timedelta(seconds=1), {}), (late + DAY, {"past_due": 1}),
                             (late + 3 * DAY, {"past_due": 1}), (late + 5 * DAY, {"canceled": 1})]:
        clock.now = moment
        assert run_pass(uow, ports) == expected, moment
    assert len(ledger.requests) == 4


def test_a_subscription_a_cycle_overdue_pays_one_cycle_from_the_attempt(uow, ports, subscribe, ledger, clock):
    subscription = subscribe("acme-basico", started=timedelta(days=71))
    assert subscription.cycle_end < NOW - 30 * DAY
    assert run_pass(uow, ports) == {"renewed": 1}
    assert run_pass(uow, ports) == {} and len(ledger.requests) == 1
    # The month missed is never billed: the new cycle starts at the attempt.
    assert (subscription.cycle_number, subscription.cycle_start, subscription.cycle_end) == (
        2, NOW, datetime(2026, 4, 15, 12, tzinfo=timezone.utc))


def test_a_card_billing_cannot_use_ends_it_after_the_retries(uow, ports, subscribe, ledger, clock):
    subscription = subscribe("acme-basico")
    due = subscription.cycle_end
    ledger.unusable_tokens.add(subscription.payment_token)
    for moment, expected in [(due, {"past_due": 1}), (due + DAY, {"past_due": 1}),
                             (due + 3 * DAY, {"past_due": 1}), (due + 5 * DAY, {"canceled": 1})]:
        clock.now = moment
        assert run_pass(uow, ports) == expected, moment
    assert (subscription.cancel_reason, ledger.orders) == ("non_payment", {})
    [first] = [data for event_type, data in uow.events if event_type == "subscription_past_due"][:1]
    assert {key: first[key] for key in ("cycle_number", "attempts", "next_retry_at", "amount_cents")} == {
        "cycle_number": 2, "attempts": 1, "next_retry_at": due + DAY, "amount_cents": 2990}


def test_a_cancellation_with_no_charge_made_records_nothing_not_applied(uow, ports, subscribe, ledger, clock):
    subscription = subscribe("acme-basico")
    handlers.cancel(commands.Cancel(identity(), subscription.id), uow, ports)
    clock.now = subscription.cycle_end
    assert run_pass(uow, ports) == {"canceled": 1}
    assert "subscription_payment_not_applied" not in uow.event_types() and ledger.requests == []


def test_a_retry_that_is_paid_makes_it_active_on_its_usual_dates(uow, ports, subscribe, ledger, clock):
    subscription = subscribe("acme-basico")
    due = subscription.cycle_end
    clock.now = due
    ledger.card_answer = "refused"
    run_pass(uow, ports)
    ledger.card_answer = "paid"
    clock.now = due + DAY
    assert run_pass(uow, ports) == {"renewed": 1}
    assert (subscription.status, subscription.cycle_number, subscription.cycle_start) == ("active", 2, due)
    assert subscription.first_failed_at is None and subscription.charge_attempts == 0


def test_a_registered_past_due_subscription_is_retried_a_day_after_its_due_date(
        uow, ports, subscribe, ledger, clock):
    subscription = subscribe("acme-basico", status="past_due")
    clock.now = subscription.cycle_end
    assert run_pass(uow, ports) == {}
    clock.now = subscription.cycle_end + DAY
    assert run_pass(uow, ports) == {"renewed": 1}
    assert [request["idempotency_key"] for request in ledger.requests] == [f"retry:{subscription.id}:2:1"]


def test_an_unpaid_pix_is_never_issued_twice_and_the_subscription_ends(uow, ports, subscribe, ledger, clock):
    subscription = subscribe("acme-basico", payment={"method": "pix"})
    due = subscription.cycle_end
    results = []
    for moment in (due - 3 * DAY, due, due + DAY, due + 3 * DAY, due + 5 * DAY):
        clock.now = moment
        results.append(run_pass(uow, ports))
    assert results == [{"waiting": 1}, {"past_due": 1}, {"past_due": 1}, {"past_due": 1}, {"canceled": 1}]
    assert {request["idempotency_key"] for request in ledger.requests} == {f"renewal:{subscription.id}:2"}
    assert subscription.cancel_reason == "non_payment"


def test_a_boleto_canceled_at_period_end_is_not_issued_ahead(uow, ports, subscribe, ledger, clock):
    subscription = subscribe("acme-basico", payment={"method": "boleto"})
    handlers.cancel(commands.Cancel(identity(), subscription.id, "switching_service"), uow, ports)
    clock.now = subscription.cycle_end - ports.issue_ahead
    assert run_pass(uow, ports) == {}
    clock.now = subscription.cycle_end
    assert run_pass(uow, ports) == {"canceled": 1}
    assert (subscription.cancel_reason, subscription.cancel_feedback, ledger.requests) == (
        "buyer", "switching_service", [])
