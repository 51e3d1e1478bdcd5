"""Plan options, quotes, confirmations and undoing a scheduled change, against the unit
of work and billing in memory."""
from datetime import datetime, timedelta, timezone

import pytest

from services.common.errors import Conflict, Forbidden, NotFound, RuleRefused
from services.subscriptions import handlers
from services.subscriptions.domain import commands
from services.subscriptions.domain.subscription import NextCharge
from support.subscriptions_testkit import ANA, BRUNO, NOW, identity


def quote(uow, ports, subscription, offer_id):
    return handlers.quote_plan_change(commands.QuotePlanChange(identity(), subscription.id, offer_id), uow, ports)


def confirm(uow, ports, subscription, quoted, installments=1):
    return handlers.change_plan(commands.ChangePlan(identity(), subscription.id, quoted.id, installments), uow, ports)


def test_options_say_how_each_switch_goes(uow, ports, subscribe):
    subscription = subscribe("acme-premium")
    found, options = handlers.plan_options(commands.PlanOptions(identity(), subscription.id), uow, ports)
    assert found is subscription
    assert [(offer.id, kind) for offer, kind in options] == [("acme-basico", "scheduled"), ("acme-anual", "new_cycle")]


def test_an_upgrade_is_charged_under_the_quotes_key_and_applied(uow, ports, subscribe, ledger):
    subscription = subscribe("acme-basico")
    quoted = quote(uow, ports, subscription, "acme-premium")
    assert (quoted.kind, quoted.takes_effect, quoted.expires_at) == ("upgrade", "now", NOW + timedelta(minutes=10))

    changed, order = confirm(uow, ports, subscription, quoted)

    [charge] = ledger.requests
    assert charge["idempotency_key"] == f"plan_change:{quoted.id}"
    assert (charge["amount_cents"], charge["kind"], charge["method"], charge["payment_token"], charge["email"]) == (
        quoted.charge_cents, "plan_change", "credit_card", "tok_ana_visa", ANA)
    assert (changed.offer_id, changed.offer.id, order["status"], quoted.status) == (
        "acme-premium", "acme-premium", "paid", "applied")
    event_type, data = uow.events[-1]
    assert (event_type, data["kind"], data["charge_cents"], data["order_code"], data["actor"]) == (
        "subscription_plan_changed", "upgrade", quoted.charge_cents, order["code"], "buyer")
    assert uow.activity[-1][1:3] == ("buyer", "plan_changed")
    spent = pytest.raises(Conflict, confirm, uow, ports, subscription, quoted)
    assert spent.value.code == "quote_expired"


def test_installments_up_to_the_quotes_cap(uow, ports, subscribe, ledger):
    subscription = subscribe("acme-basico")
    quoted = quote(uow, ports, subscription, "acme-anual")
    assert (quoted.kind, quoted.max_installments) == ("new_cycle", 12)
    above = pytest.raises(RuleRefused, confirm, uow, ports, subscription, quoted, 13)
    assert above.value.code == "installments_above_cap" and ledger.requests == []

    confirm(uow, ports, subscription, quoted, 12)

    # A longer periodicity starts a new cycle now.
    assert (subscription.cycle_number, subscription.cycle_start, subscription.installments) == (2, NOW, 12)
    assert subscription.cycle_end == datetime(2027, 3, 15, 12, tzinfo=timezone.utc) == subscription.next_charge_at
    assert ledger.requests[0]["cycle_number"] == 2 and ledger.requests[0]["installments"] == 12


def test_an_expired_quote_is_refused_and_nothing_is_charged(uow, ports, subscribe, ledger, clock):
    subscription = subscribe("acme-basico")
    quoted = quote(uow, ports, subscription, "acme-premium")
    clock.now = NOW + timedelta(minutes=10)
    assert pytest.raises(Conflict, confirm, uow, ports, subscription, quoted).value.code == "quote_expired"
    assert ledger.requests == [] and subscription.offer_id == "acme-basico"


def test_a_quote_of_another_state_is_refused(uow, ports, subscribe, ledger):
    subscription = subscribe("acme-basico")
    quoted = quote(uow, ports, subscription, "acme-premium")
    handlers.change_payment_method(commands.ChangePaymentMethod(identity(), subscription.id, "pix"), uow, ports)
    assert pytest.raises(Conflict, confirm, uow, ports, subscription, quoted).value.code == "quote_expired"
    assert ledger.requests == []


def test_a_declined_card_leaves_everything_as_it_was(uow, ports, subscribe, ledger):
    subscription = subscribe("acme-basico")
    quoted = quote(uow, ports, subscription, "acme-premium")
    events = list(uow.events)
    ledger.card_answer = "refused"

    declined = pytest.raises(RuleRefused, confirm, uow, ports, subscription, quoted)

    assert declined.value.code == "charge_declined"
    assert declined.value.fields == {"decline_reason": ["insufficient_funds"]}
    assert (subscription.offer_id, subscription.pending_change_status, quoted.status) == ("acme-basico", None, "open")
    assert uow.events == events and subscription.changes == []


def test_a_downgrade_waits_for_the_cycle_end_and_can_be_undone(uow, ports, subscribe, ledger):
    subscription = subscribe("acme-premium")
    quoted = quote(uow, ports, subscription, "acme-basico")
    assert (quoted.kind, quoted.charge_cents, quoted.effective_at) == ("scheduled", 0, subscription.cycle_end)

    changed, order = confirm(uow, ports, subscription, quoted)

    assert ledger.requests == [] and order is None
    assert (changed.offer_id, changed.pending_offer.id, changed.pending_change_status) == (
        "acme-premium", "acme-basico", "scheduled")
    # The next renewal charges the new plan's price.
    assert changed.next_charge() == NextCharge(subscription.cycle_end, 2990)
    other = pytest.raises(RuleRefused, quote, uow, ports, subscription, "acme-anual")
    assert other.value.code == "change_already_pending"

    handlers.undo_plan_change(commands.UndoPlanChange(identity(), subscription.id), uow, ports)

    assert (subscription.pending_change_status, subscription.pending_offer, quoted.status) == (None, None, "dropped")
    nothing = pytest.raises(RuleRefused, handlers.undo_plan_change,
                            commands.UndoPlanChange(identity(), subscription.id), uow, ports)
    assert nothing.value.code == "no_pending_change"
    assert uow.event_types()[-2:] == ["subscription_plan_change_scheduled", "subscription_plan_change_dropped"]
    assert uow.events[-1][1]["why"] == "undone" and uow.events[-2][1]["takes_effect"] == "cycle_end"


def test_a_scheduled_change_cannot_be_undone_once_the_period_ended(uow, ports, subscribe, clock):
    subscription = subscribe("acme-premium")
    confirm(uow, ports, subscription, quote(uow, ports, subscription, "acme-basico"))
    clock.now = subscription.cycle_end
    ended = pytest.raises(RuleRefused, handlers.undo_plan_change,
                          commands.UndoPlanChange(identity(), subscription.id), uow, ports)
    assert ended.value.code == "period_ended"


def test_a_pix_upgrade_awaits_its_payment_and_cannot_be_undone(uow, ports, subscribe, ledger):
    subscription = subscribe("acme-basico", payment={"method": "pix"})
    quoted = quote(uow, ports, subscription, "acme-premium")
    assert (quoted.takes_effect, quoted.max_installments) == ("on_payment", 1)

    changed, order = confirm(uow, ports, subscription, quoted)

    assert (order["status"], changed.offer_id, changed.pending_change_status, quoted.order_code) == (
        "pending", "acme-basico", "awaiting_payment", order["code"])
    assert uow.events[-1][1]["takes_effect"] == "on_payment"
    awaiting = pytest.raises(RuleRefused, handlers.undo_plan_change,
                             commands.UndoPlanChange(identity(), subscription.id), uow, ports)
    assert awaiting.value.code == "change_awaiting_payment"


def test_a_confirmation_repeated_after_its_payment_applied_answers_that_charge(uow, ports, subscribe, ledger):
    subscription = subscribe("acme-basico", payment={"method": "pix"})
    quoted = quote(uow, ports, subscription, "acme-premium")
    order = ports.billing.charge(subscription.quote_charge_request(quoted, uow.offers.get("acme-cursos",
                                                                                        "acme-premium"), 1))
    handlers.settle_order(commands.SettleOrder("event-1", "order_paid", {**order, "status": "paid"}), uow, ports)
    assert quoted.status == "applied" and quoted.installments is None

    changed, again = confirm(uow, ports, subscription, quoted)

    assert again["code"] == order["code"] and len(ledger.orders) == 1
    assert (changed.offer_id, quoted.installments) == ("acme-premium", 1)


@pytest.mark.parametrize("offer_id, setup, code", [
    ("acme-basico", None, "option_not_offered"),  # itself
    ("beta-max", None, "option_not_offered"),  # another merchant's
    ("nope", None, "option_not_offered"),
    ("acme-premium", "past_due", "subscription_not_active"),
    ("acme-premium", "canceled", "subscription_not_active"),
    ("acme-premium", "renewal_in_progress", "renewal_in_progress"),
])
def test_the_rules_refuse_a_quote(uow, ports, subscribe, offer_id, setup, code):
    subscription = subscribe("acme-basico", status=setup if setup in ("past_due", "canceled") else "active")
    if setup == "renewal_in_progress":
        subscription.waiting_charge_method = "credit_card"
    assert pytest.raises(RuleRefused, quote, uow, ports, subscription, offer_id).value.code == code
    assert uow.quotes.by_id == {}


def test_a_setting_that_is_off_refuses_and_another_buyer_finds_nothing(uow, ports, subscribe):
    beta = subscribe("beta-pro", merchant_id="beta-software", email=BRUNO)
    for handler, command in [
        (handlers.plan_options, commands.PlanOptions(identity(BRUNO), beta.id)),
        (handlers.quote_plan_change, commands.QuotePlanChange(identity(BRUNO), beta.id, "beta-max")),
        (handlers.change_plan, commands.ChangePlan(identity(BRUNO), beta.id, "no-quote")),
        (handlers.undo_plan_change, commands.UndoPlanChange(identity(BRUNO), beta.id)),
    ]:
        assert pytest.raises(Forbidden, handler, command, uow, ports).value.code == "operation_disabled"
    acme = subscribe("acme-basico")
    with pytest.raises(NotFound):
        handlers.quote_plan_change(commands.QuotePlanChange(identity(BRUNO), acme.id, "acme-premium"), uow, ports)
    unknown = pytest.raises(NotFound, handlers.change_plan, commands.ChangePlan(identity(), acme.id, "no-quote"),
                            uow, ports)
    assert unknown.value.code == "quote_not_found"
