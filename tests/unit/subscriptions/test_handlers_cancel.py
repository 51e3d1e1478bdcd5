"""Cancel and undo a cancellation, against the unit of work and billing in memory."""
import socket
from datetime import timedelta

import pytest
import pytest_socket

from services.common.errors import Forbidden, NotFound, RuleRefused
from services.subscriptions import handlers
from services.subscriptions.domain import commands
from support.subscriptions_testkit import BRUNO, NOW, identity


def test_the_network_is_off_here():
    with pytest.raises(pytest_socket.SocketBlockedError):
        socket.create_connection(("127.0.0.1", 5672), timeout=1)


def test_at_period_end_with_a_reason_then_undo(uow, ports, subscribe, clock):
    subscription = subscribe("acme-basico")
    cycle_end = subscription.cycle_end

    handlers.cancel(commands.Cancel(identity(), subscription.id, "too_expensive", "caro"), uow, ports)

    assert (subscription.status, subscription.cancel_at_period_end, subscription.next_charge_at) == (
        "active", True, None)
    # Ended by the renewal job at the cycle end, with no order issued ahead.
    assert subscription.renewal_run_at == cycle_end
    assert uow.events == [("subscription_cancellation_scheduled", {
        "subscription_id": subscription.id, "email": subscription.email, "actor": "buyer",
        "effective_at": cycle_end, "feedback": "too_expensive", "comment": "caro"})]
    assert uow.activity[-1][1:3] == ("buyer", "cancellation_scheduled")
    again = pytest.raises(RuleRefused, handlers.cancel, commands.Cancel(identity(), subscription.id), uow, ports)
    assert again.value.code == "cancellation_already_scheduled"

    handlers.undo_cancel(commands.UndoCancel(identity(), subscription.id), uow, ports)

    assert (subscription.cancel_at_period_end, subscription.cancel_feedback, subscription.next_charge_at) == (
        False, None, cycle_end)
    assert subscription.renewal_run_at == cycle_end  # a card: charged on the due date
    assert uow.events[-1] == ("subscription_cancellation_undone", {
        "subscription_id": subscription.id, "email": subscription.email, "actor": "buyer",
        "next_charge_at": cycle_end})
    nothing = pytest.raises(RuleRefused, handlers.undo_cancel, commands.UndoCancel(identity(), subscription.id),
                            uow, ports)
    assert nothing.value.code == "no_scheduled_cancellation"


def test_a_cancellation_drops_a_scheduled_plan_change(uow, ports, subscribe):
    subscription = subscribe("acme-premium")
    quote = handlers.quote_plan_change(commands.QuotePlanChange(identity(), subscription.id, "acme-basico"), uow, ports)
    handlers.change_plan(commands.ChangePlan(identity(), subscription.id, quote.id), uow, ports)

    handlers.cancel(commands.Cancel(identity(), subscription.id), uow, ports)

    assert subscription.pending_change_status is None and quote.status == "dropped"
    assert uow.event_types()[-2:] == ["subscription_plan_change_dropped", "subscription_cancellation_scheduled"]


def test_a_boleto_subscription_undone_is_issued_ahead_again(uow, ports, subscribe):
    subscription = subscribe("acme-basico", payment={"method": "boleto"})
    handlers.cancel(commands.Cancel(identity(), subscription.id), uow, ports)
    handlers.undo_cancel(commands.UndoCancel(identity(), subscription.id), uow, ports)
    assert subscription.renewal_run_at == subscription.cycle_end - ports.issue_ahead


def test_the_undo_ends_with_the_period(uow, ports, subscribe, clock):
    subscription = subscribe("acme-basico")
    handlers.cancel(commands.Cancel(identity(), subscription.id), uow, ports)
    clock.now = subscription.cycle_end
    ended = pytest.raises(RuleRefused, handlers.undo_cancel, commands.UndoCancel(identity(), subscription.id),
                          uow, ports)
    assert ended.value.code == "period_ended"


def test_immediately_when_the_merchant_says_so(uow, ports, subscribe):
    beta = subscribe("beta-pro", merchant_id="beta-software", email=BRUNO)
    beta.merchant.customer_can_cancel = True
    try:
        handlers.cancel(commands.Cancel(identity(BRUNO), beta.id, "other", None), uow, ports)
    finally:
        beta.merchant.customer_can_cancel = False
    assert (beta.status, beta.cancel_reason, beta.canceled_at, beta.next_charge_at, beta.renewal_run_at) == (
        "canceled", "buyer", NOW, None, None)
    [(event_type, data)] = uow.events
    assert (event_type, data["reason"], data["feedback"], data["canceled_at"]) == (
        "subscription_canceled", "buyer", "other", NOW)
    beta.merchant.customer_can_cancel = True
    try:
        again = pytest.raises(RuleRefused, handlers.cancel, commands.Cancel(identity(BRUNO), beta.id), uow, ports)
        undo = pytest.raises(RuleRefused, handlers.undo_cancel, commands.UndoCancel(identity(BRUNO), beta.id),
                             uow, ports)
    finally:
        beta.merchant.customer_can_cancel = False
    assert (again.value.code, undo.value.code) == ("subscription_not_active", "no_scheduled_cancellation")


def test_a_past_due_subscription_is_canceled_now_whatever_the_mode(uow, ports, subscribe):
    subscription = subscribe("acme-basico", status="past_due")
    handlers.cancel(commands.Cancel(identity(), subscription.id), uow, ports)
    assert subscription.status == "canceled"


def test_a_canceled_subscription_cannot_be_canceled_again(uow, ports, subscribe):
    subscription = subscribe("acme-basico", status="past_due")
    handlers.cancel(commands.Cancel(identity(), subscription.id), uow, ports)
    refused = pytest.raises(RuleRefused, handlers.cancel, commands.Cancel(identity(), subscription.id), uow, ports)
    assert refused.value.code == "subscription_not_active"


def test_a_setting_that_is_off_refuses_and_another_buyer_finds_nothing(uow, ports, subscribe):
    beta = subscribe("beta-pro", merchant_id="beta-software", email=BRUNO)
    acme = subscribe("acme-basico")
    for command in (commands.Cancel(identity(BRUNO), beta.id), commands.UndoCancel(identity(BRUNO), beta.id)):
        handler = handlers.cancel if isinstance(command, commands.Cancel) else handlers.undo_cancel
        assert pytest.raises(Forbidden, handler, command, uow, ports).value.code == "operation_disabled"
        with pytest.raises(NotFound):
            handler(type(command)(identity(BRUNO), acme.id), uow, ports)
    # A session scoped to another merchant does not see it either.
    with pytest.raises(NotFound):
        handlers.cancel(commands.Cancel(identity(merchant_id="beta-software"), acme.id), uow, ports)
    assert uow.events == [] and beta.status == "active"


def test_nothing_is_recorded_before_the_unit_of_work_commits(uow, ports, subscribe):
    subscription = subscribe("acme-basico")
    handlers.cancel(commands.Cancel(identity(), subscription.id), uow, ports)
    assert uow.commits == 1 and subscription.changes == []
    assert subscription.renewal_run_at - NOW < timedelta(days=31)
