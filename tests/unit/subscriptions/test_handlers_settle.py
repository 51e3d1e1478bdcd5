"""billing's order_paid and charge_failed events, against the unit of work and billing
in memory: a plan change's payment applies it, its failure drops it, a renewal paid
late renews, a payment that can no longer apply is recorded, and each event acts once."""
import pytest

from services.subscriptions import handlers
from services.subscriptions.domain import commands
from support.subscriptions_testkit import identity


def settle(uow, ports, event_type, order, event_id="event-1"):
    handlers.settle_order(commands.SettleOrder(event_id, event_type, order), uow, ports)


@pytest.fixture
def pix_upgrade(uow, ports, subscribe):
    """A pix subscription whose upgrade to premium awaits its payment: (subscription, quote, order)."""
    subscription = subscribe("acme-basico", payment={"method": "pix"})
    quote = handlers.quote_plan_change(commands.QuotePlanChange(identity(), subscription.id, "acme-premium"),
                                       uow, ports)
    _, order = handlers.change_plan(commands.ChangePlan(identity(), subscription.id, quote.id), uow, ports)
    return subscription, quote, order


def test_a_pix_upgrade_takes_effect_when_paid_once(uow, ports, pix_upgrade):
    subscription, quote, order = pix_upgrade
    settle(uow, ports, "order_paid", {**order, "status": "paid"})
    assert (subscription.offer_id, subscription.pending_change_status, quote.status) == (
        "acme-premium", None, "applied")
    assert uow.events[-1][0] == "subscription_plan_changed" and uow.events[-1][1]["actor"] == "system"
    count = len(uow.events)
    settle(uow, ports, "order_paid", {**order, "status": "paid"})
    settle(uow, ports, "order_paid", {**order, "status": "paid"}, event_id="event-2")
    assert len(uow.events) == count


def test_a_failed_charge_drops_the_awaited_change(uow, ports, pix_upgrade):
    subscription, quote, order = pix_upgrade
    settle(uow, ports, "charge_failed", {**order, "status": "refused"})
    assert (subscription.offer_id, subscription.pending_change_status, quote.status) == (
        "acme-basico", None, "dropped")
    assert uow.events[-1][1]["why"] == "charge_failed"


def test_a_payment_for_a_change_that_can_no_longer_apply_is_recorded(uow, ports, pix_upgrade):
    subscription, quote, order = pix_upgrade
    handlers.cancel(commands.Cancel(identity(), subscription.id), uow, ports)  # drops nothing: awaiting payment
    subscription.status = "canceled"
    settle(uow, ports, "order_paid", {**order, "status": "paid"})
    assert uow.events[-1] == ("subscription_payment_not_applied", {
        "subscription_id": subscription.id, "email": subscription.email, "actor": "system",
        "order_code": order["code"], "amount_cents": order["amount_cents"], "kind": "plan_change"})


def test_a_renewal_boleto_paid_renews_and_a_late_repeat_changes_nothing(uow, ports, subscribe, ledger):
    subscription = subscribe("acme-basico", payment={"method": "boleto"})
    request, _ = subscription.open_renewal_request()
    order = {**ports.billing.charge(request), "status": "paid"}
    settle(uow, ports, "order_paid", order)
    assert (subscription.cycle_number, uow.event_types()) == (2, ["subscription_renewed"])
    # The next renewal's boleto is issued three days before the new cycle ends.
    assert subscription.renewal_run_at == subscription.cycle_end - ports.issue_ahead
    settle(uow, ports, "order_paid", order, event_id="event-2")
    assert subscription.cycle_number == 2 and len(uow.events) == 1 and uow.inbox == {("event-1", "order_paid")}


def test_a_renewal_paid_after_a_cancellation_at_period_end_is_recorded_not_applied(uow, ports, subscribe):
    subscription = subscribe("acme-basico", payment={"method": "boleto"})
    request, _ = subscription.open_renewal_request()
    order = ports.billing.charge(request)
    handlers.cancel(commands.Cancel(identity(), subscription.id), uow, ports)
    settle(uow, ports, "order_paid", {**order, "status": "paid"})
    assert subscription.cycle_number == 1
    assert uow.events[-1][0] == "subscription_payment_not_applied" and uow.events[-1][1]["kind"] == "renewal"


def test_orders_not_of_a_subscription_and_the_jobs_own_charges_are_left_alone(uow, ports, subscribe):
    subscription = subscribe("acme-basico")
    request, _ = subscription.open_renewal_request()
    order = {**ports.billing.charge(request), "status": "paid"}
    settle(uow, ports, "order_paid", {**order, "settled_at_charge": True})
    settle(uow, ports, "order_paid", {**order, "kind": None}, event_id="event-2")
    assert subscription.cycle_number == 1 and uow.events == [] and uow.inbox == set()
