"""A checkout's intake (handlers.create_subscription), against the unit of work and
billing in memory: the subscription as its status says, its card on file with
billing, announced once; a repeat answers the first; every refusal writes nothing."""
from datetime import timedelta

import pytest

from services.common.errors import ValidationFailed
from services.common.validation import load
from services.subscriptions import handlers
from services.subscriptions.domain import commands
from services.subscriptions.schemas import SubscriptionInputSchema, SubscriptionSchema
from support.subscriptions_testkit import ANA, ANA_CARD, BRUNO, NOW

CYCLE_START = NOW - timedelta(days=10)
CYCLE_END = CYCLE_START + timedelta(days=31)
ANA_ON_FILE = {"email": ANA, "merchant_id": "acme-cursos", "brand": "visa", "last4": "4242", "exp": "08/2030"}


def checkout(external_id="checkout-1", **changes):
    """intake's command, its subscription loaded as the service loads it."""
    return commands.CreateSubscription(load(SubscriptionInputSchema(), {
        "merchant_id": "acme-cursos", "external_id": external_id, "offer_id": "acme-basico", "email": ANA,
        "status": "active", "cycle_number": 1, "cycle_start": CYCLE_START.isoformat(),
        "cycle_end": CYCLE_END.isoformat(), "payment": ANA_CARD, **changes,
    }))


def refused_fields(uow, ports, command):
    with pytest.raises(ValidationFailed) as refusal:
        handlers.create_subscription(command, uow, ports)
    return refusal.value.fields


def test_a_card_subscription_is_registered_on_file_and_announced(uow, ports, ledger):
    subscription = handlers.create_subscription(checkout(), uow, ports)

    assert (subscription.status, subscription.cycle_number, subscription.cycle_start, subscription.cycle_end) == (
        "active", 1, CYCLE_START, CYCLE_END)
    # An active card subscription is charged when its cycle ends, by the renewal job then.
    assert subscription.next_charge_at == subscription.renewal_run_at == CYCLE_END
    assert (subscription.charge_attempts, subscription.first_failed_at, subscription.balance_cents) == (0, None, 0)
    assert subscription.created_at == NOW
    assert ledger.cards == {"tok_ana_visa": ANA_ON_FILE}
    assert uow.subscriptions.by_id == {subscription.id: subscription}
    # Whoever bought a subscription can log in, even if the checkout sent no contact.
    assert uow.contacts.known == {("acme-cursos", ANA)}
    assert uow.events == [("subscription_created", {
        "subscription_id": subscription.id, "external_id": "checkout-1", "offer_id": "acme-basico", "email": ANA,
        "status": "active", "cycle_end": CYCLE_END})]
    assert uow.activity == [(subscription.id, "merchant", "subscription_created", {
        "external_id": "checkout-1", "offer_id": "acme-basico", "status": "active"})]
    assert uow.commits == 1 and subscription.changes == []
    answer = SubscriptionSchema().dump(subscription)
    assert (answer["merchant"]["name"], answer["plan_name"], answer["next_charge_at"]) == (
        "Acme Cursos", "Básico mensal", CYCLE_END.isoformat())
    assert answer["payment_method"] == {"method": "credit_card", "card_brand": "visa", "card_last4": "4242",
                                        "card_exp": "08/2030"}
    assert "tok_ana_visa" not in repr(answer)


def test_a_card_sent_as_a_sale_card_goes_to_billing_so_and_is_refused_by_those_names(uow, ports, ledger):
    sale_card = {"method": "credit_card", "card": {"card_ref": "tok_ana_visa", "brand": "visa", "last4": "4242",
                                                    "exp": "08/2030"}}
    command = commands.CreateSubscription(checkout(payment=sale_card).subscription, card_as_sale_card=True)
    handlers.create_subscription(command, uow, ports)
    assert ledger.registrations[-1]["payment"] == sale_card
    assert ledger.cards == {"tok_ana_visa": ANA_ON_FILE}

    bruno = commands.CreateSubscription(
        checkout("checkout-2", email=BRUNO, payment=sale_card).subscription, card_as_sale_card=True)
    assert refused_fields(uow, ports, bruno) == {"payment": {"card": {"card_ref": ["Belongs to another buyer."]}}}


def test_a_repeat_of_the_external_id_answers_the_first(uow, ports, ledger):
    first = handlers.create_subscription(checkout(), uow, ports)
    cards, events = dict(ledger.cards), list(uow.events)

    repeat = handlers.create_subscription(
        checkout(status="past_due", payment={"method": "pix"}, offer_id="acme-premium"), uow, ports)

    assert repeat is first and first.status == "active" and first.payment_method == "credit_card"
    assert list(uow.subscriptions.by_id) == [first.id]
    assert uow.events == events and ledger.cards == cards  # nothing announced again, no card asked for
    # Another merchant's checkout with the same id is another subscription.
    bruno = handlers.create_subscription(checkout(merchant_id="beta-software", offer_id="beta-pro", email=BRUNO,
                                                  payment={"method": "pix"}), uow, ports)
    assert bruno is not first and len(uow.subscriptions.by_id) == 2


def test_boleto_and_pix_are_not_put_on_file_and_are_issued_ahead(uow, ports, ledger):
    for method in ("boleto", "pix"):
        subscription = handlers.create_subscription(checkout(method, payment={"method": method}), uow, ports)
        assert (subscription.payment_method, subscription.payment_token, subscription.card_last4) == (
            method, None, None)
        assert subscription.next_charge_at == CYCLE_END
        assert subscription.renewal_run_at == CYCLE_END - ports.issue_ahead
    assert ledger.cards == {}


def test_a_past_due_subscription_has_had_its_first_charge_refused(uow, ports):
    subscription = handlers.create_subscription(checkout(status="past_due"), uow, ports)
    # Its renewal failed when the cycle ended: the first retry comes a day later.
    assert subscription.next_charge_at == subscription.renewal_run_at == CYCLE_END + timedelta(days=1)
    assert (subscription.charge_attempts, subscription.first_failed_at) == (1, CYCLE_END)


def test_a_canceled_subscription_is_never_charged(uow, ports):
    subscription = handlers.create_subscription(checkout(status="canceled", cancel_reason="buyer"), uow, ports)
    assert (subscription.status, subscription.cancel_reason) == ("canceled", "buyer")
    assert subscription.next_charge_at is None and subscription.renewal_run_at is None


def test_the_checkout_may_say_when_it_charges_next_and_when_it_sold(uow, ports):
    next_charge_at, sold_at = CYCLE_END + timedelta(days=2), NOW - timedelta(days=40)
    subscription = handlers.create_subscription(
        checkout(next_charge_at=next_charge_at.isoformat(), created_at=sold_at.isoformat(), installments=1),
        uow, ports)
    assert subscription.next_charge_at == subscription.renewal_run_at == next_charge_at
    assert subscription.created_at == sold_at


@pytest.mark.parametrize("changes, fields", [
    ({"merchant_id": "nowhere"},
     {"merchant_id": ["Unknown merchant."], "offer_id": ["Not an offer of this merchant."]}),
    ({"offer_id": "beta-pro"}, {"offer_id": ["Not an offer of this merchant."]}),
    ({"installments": 2}, {"installments": ["The offer allows at most 1."]}),
    ({"offer_id": "acme-anual", "installments": 2, "payment": {"method": "boleto"}},
     {"installments": ["Installments are for credit_card only."]}),
    ({"cycle_end": CYCLE_START.isoformat()}, {"cycle_end": ["Must be after cycle_start."]}),
    ({"cancel_reason": "buyer"}, {"cancel_reason": ["Only for a canceled subscription."]}),
], ids=["unknown-merchant", "another-merchants-offer", "installments-over-the-offer", "installments-not-card",
        "cycle-ends-before-it-starts", "cancel-reason-not-canceled"])
def test_a_subscription_the_rules_refuse_writes_nothing_and_puts_no_card_on_file(uow, ports, ledger, changes,
                                                                                 fields):
    assert refused_fields(uow, ports, checkout(**changes)) == fields
    assert (uow.subscriptions.by_id, uow.events, uow.activity, uow.contacts.known, uow.commits) == (
        {}, [], [], set(), 0)
    assert ledger.cards == {}


def test_a_card_billing_refuses_writes_nothing(uow, ports, ledger):
    handlers.create_subscription(checkout("ana-1"), uow, ports)
    # Ana's card token, sent for Bruno: billing keeps a token for the one buyer it was issued to.
    assert refused_fields(uow, ports, checkout("bruno-1", email=BRUNO)) == {
        "payment": {"token": ["Belongs to another buyer."]}}
    assert len(uow.subscriptions.by_id) == 1 and uow.commits == 1
    assert uow.contacts.known == {("acme-cursos", ANA)}
    assert ledger.cards == {"tok_ana_visa": ANA_ON_FILE}
