"""Change the payment method (and pay a past-due renewal with it) and begin a card
update, against the unit of work and billing in memory."""
import pytest

from services.common.errors import Forbidden, NotFound, RuleRefused, ValidationFailed
from services.subscriptions import handlers
from services.subscriptions.domain import commands
from support.subscriptions_testkit import ANA, BRUNO, NOW, InMemoryBilling, card_for, identity

NEW_CARD = {"method": "credit_card", "card_brand": "master", "card_last4": "5454", "card_exp": "01/2031",
            "token": "tok_ana_master"}


def change(uow, ports, subscription, method, card_token=None, email=ANA):
    return handlers.change_payment_method(
        commands.ChangePaymentMethod(identity(email), subscription.id, method, card_token), uow, ports)


def test_a_card_from_card_entry(uow, ports, subscribe, ledger):
    subscription = subscribe("acme-basico", payment={"method": "boleto"})
    assert subscription.renewal_run_at == subscription.cycle_end - ports.issue_ahead
    InMemoryBilling(ledger).register_card({"merchant_id": "acme-cursos", "email": ANA, "payment": NEW_CARD})

    changed, order = change(uow, ports, subscription, "credit_card", "tok_ana_master")

    assert order is None and ledger.requests == []
    assert (changed.payment_method, changed.card_brand, changed.card_last4, changed.payment_token) == (
        "credit_card", "master", "5454", "tok_ana_master")
    # A card is charged on the due date, not issued ahead.
    assert changed.renewal_run_at == subscription.cycle_end
    assert uow.events == [("subscription_payment_method_changed", {
        "subscription_id": subscription.id, "email": ANA, "actor": "buyer", "method": "credit_card",
        "card_brand": "master", "card_last4": "5454", "card_exp": "01/2031"})]


def test_a_card_not_of_this_buyer_is_not_found(uow, ports, subscribe):
    subscription = subscribe("acme-basico")
    unknown = pytest.raises(ValidationFailed, change, uow, ports, subscription, "credit_card",
                            card_for(BRUNO)["token"])
    assert unknown.value.code == "unknown_card_token" and "card_token" in unknown.value.fields
    assert subscription.payment_token == "tok_ana_visa" and uow.events == []


def test_pix_drops_the_card_and_the_installments(uow, ports, subscribe):
    subscription = subscribe("acme-basico")
    subscription.installments = 3
    change(uow, ports, subscription, "pix")
    assert (subscription.payment_token, subscription.card_last4, subscription.installments) == (None, None, 1)


def test_a_method_the_merchant_does_not_take_is_refused(uow, ports, subscribe):
    subscription = subscribe("acme-basico")
    subscription.merchant.payment_methods_allowed = ["credit_card"]
    try:
        refused = pytest.raises(RuleRefused, change, uow, ports, subscription, "pix")
    finally:
        subscription.merchant.payment_methods_allowed = ["credit_card", "boleto", "pix"]
    assert refused.value.code == "method_not_allowed"
    ended = subscribe("acme-basico", status="canceled")
    not_active = pytest.raises(RuleRefused, handlers.begin_card_update,
                               commands.BeginCardUpdate(identity(), ended.id), uow, ports)
    assert not_active.value.code == "subscription_not_active"


def test_past_due_update_and_pay_now(uow, ports, subscribe, ledger):
    subscription = subscribe("acme-basico", status="past_due")
    retry_at = subscription.renewal_run_at
    InMemoryBilling(ledger).register_card({"merchant_id": "acme-cursos", "email": ANA, "payment": NEW_CARD})

    changed, order = change(uow, ports, subscription, "credit_card", "tok_ana_master")

    [charge] = ledger.requests
    # Its second attempt (intake counted the first, refused), with the new card.
    assert (charge["idempotency_key"], charge["kind"], charge["payment_token"], charge["amount_cents"]) == (
        f"retry:{subscription.id}:2:1", "retry", "tok_ana_master", 2990)
    assert (order["status"], changed.status, changed.cycle_number, changed.charge_attempts) == ("paid", "active", 2, 0)
    assert changed.renewal_run_at != retry_at
    assert uow.event_types() == ["subscription_payment_method_changed", "subscription_renewed"]


def test_past_due_pay_now_declined_keeps_it_past_due_with_the_new_method(uow, ports, subscribe, ledger):
    subscription = subscribe("acme-basico", status="past_due")
    retry_at = subscription.renewal_run_at
    ledger.card_answer = "refused"

    changed, order = change(uow, ports, subscription, "credit_card", "tok_ana_visa")

    assert (order["status"], changed.status, changed.charge_attempts, changed.renewal_run_at) == (
        "refused", "past_due", 2, retry_at)
    assert uow.activity[-1][1:3] == ("buyer", "payment_retry_failed")
    # A second try is a new charge, under a new key.
    ledger.card_answer = "paid"
    again, _ = change(uow, ports, subscription, "credit_card", "tok_ana_visa")
    assert [request["idempotency_key"] for request in ledger.requests] == [
        f"retry:{subscription.id}:2:1", f"retry:{subscription.id}:2:2"]
    assert again.status == "active"


def test_past_due_pay_now_by_pix_waits_for_the_payment(uow, ports, subscribe, ledger):
    subscription = subscribe("acme-basico", status="past_due")
    changed, order = change(uow, ports, subscription, "pix")
    assert (order["status"], changed.status, changed.waiting_charge_method) == ("pending", "past_due", "pix")
    assert uow.activity[-1][1:3] == ("buyer", "renewal_order_issued")


def test_card_entry_ticket_comes_from_billing_for_this_subscription(uow, ports, subscribe, ledger):
    subscription = subscribe("acme-basico")
    ticket = handlers.begin_card_update(commands.BeginCardUpdate(identity(), subscription.id), uow, ports)
    assert ticket["form_url"].startswith("http://billing.test/card?ticket=")
    assert ledger.tickets == [
        {"email": ANA, "merchant_id": "acme-cursos", "subscription_id": subscription.id, "holder": None}]
    assert uow.events == []


def test_the_ticket_carries_what_the_merchant_knows_of_the_card_holder(uow, ports, subscribe, ledger):
    holder = {"name": "Ana Souza", "document": "52998224725", "phone": "11987654321", "postal_code": "01310-100",
              "address_number": "1000"}
    uow.contacts.holders[("acme-cursos", ANA)] = holder
    subscription = subscribe("acme-basico")
    handlers.begin_card_update(commands.BeginCardUpdate(identity(), subscription.id), uow, ports)
    assert ledger.tickets[-1]["holder"] == holder


def test_a_setting_that_is_off_refuses_and_another_buyer_finds_nothing(uow, ports, subscribe, ledger):
    beta = subscribe("beta-pro", merchant_id="beta-software", email=BRUNO)
    for handler, command in [
        (handlers.begin_card_update, commands.BeginCardUpdate(identity(BRUNO), beta.id)),
        (handlers.change_payment_method, commands.ChangePaymentMethod(identity(BRUNO), beta.id, "pix")),
    ]:
        assert pytest.raises(Forbidden, handler, command, uow, ports).value.code == "operation_disabled"
    acme = subscribe("acme-basico")
    with pytest.raises(NotFound):
        handlers.begin_card_update(commands.BeginCardUpdate(identity(BRUNO), acme.id), uow, ports)
    assert ledger.tickets == [] and ledger.requests == []


def test_a_canceled_subscription_keeps_its_method(uow, ports, subscribe):
    subscription = subscribe("acme-basico", status="past_due")
    handlers.cancel(commands.Cancel(identity(), subscription.id), uow, ports)
    refused = pytest.raises(RuleRefused, change, uow, ports, subscription, "pix")
    assert refused.value.code == "subscription_not_active"
    assert subscription.canceled_at == NOW
