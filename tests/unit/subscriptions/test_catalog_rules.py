"""The catalog's rules (domain/rules.py): an offer in use keeps its price and
periodicity, accepts only its merchant's methods, and an archived one sells no more;
every refusal names its field."""
from types import SimpleNamespace

import pytest

from services.subscriptions import domain

TERMS = {"price_cents": 2990, "periodicity_months": 1, "plan_name": "Básico mensal"}


@pytest.mark.parametrize("change, field", [({"price_cents": 3490}, "price_cents"),
                                           ({"periodicity_months": 12}, "periodicity_months")])
def test_an_offer_in_use_keeps_its_price_and_periodicity_naming_the_field(change, field):
    problems = domain.offer_change_problems(TERMS, {**TERMS, **change}, in_use=True)
    assert list(problems) == [field]
    assert "create a new offer" in problems[field][0]


def test_an_offer_in_use_may_change_anything_else_and_one_unused_anything():
    assert domain.offer_change_problems(TERMS, {**TERMS, "plan_name": "Básico"}, in_use=True) == {}
    assert domain.offer_change_problems(TERMS, {**TERMS, "price_cents": 3490}, in_use=False) == {}


def test_an_offer_accepts_only_the_methods_its_merchant_allows():
    assert domain.accepted_methods_problems(["credit_card", "pix"], ["credit_card", "pix", "boleto"]) == {}
    assert domain.accepted_methods_problems(["credit_card", "boleto"], ["credit_card"]) == {
        "payment_methods_accepted": ["Not allowed for this merchant: boleto."]}


def test_an_offer_takes_its_own_methods_among_those_its_merchant_allows_now():
    assert domain.accepted_methods(["credit_card", "pix"], None) == ["credit_card", "pix"]
    assert domain.accepted_methods(["credit_card", "pix"], ["pix", "boleto"]) == ["pix"]


def offer(status="active", methods=("credit_card",)):
    return SimpleNamespace(status=status, payment_methods_accepted=list(methods), max_installments=1)


def test_an_archived_offer_or_a_method_it_does_not_accept_takes_no_new_sale():
    assert domain.sale_problems(offer(), "credit_card") == {}
    assert list(domain.sale_problems(offer(status="archived"), "credit_card")) == ["offer_id"]
    assert domain.sale_problems(offer(), "pix") == {"payment.method": ["This offer accepts credit_card."]}


def test_intake_of_an_ended_subscription_on_an_archived_offer_records_the_past():
    ended = {"status": "canceled", "cancel_reason": "buyer", "installments": 1, "payment": {"method": "pix"},
             "cycle_start": 1, "cycle_end": 2}
    assert domain.intake_problems(ended, True, offer(status="archived")) == {}
    assert set(domain.intake_problems({**ended, "status": "active", "cancel_reason": None}, True,
                                      offer(status="archived"))) == {"offer_id"}


def test_an_archived_offer_is_no_plan_change_option_even_if_one_still_names_it():
    assert domain.archived_option_refusal(offer()) is None
    assert domain.archived_option_refusal(offer(status="archived")).code == "option_not_offered"
