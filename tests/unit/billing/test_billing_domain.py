"""Billing rules as plain functions."""
import inspect
import secrets
from datetime import date, datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.billing import domain

CARD = {"method": "credit_card", "card_brand": "visa", "card_last4": "4242", "card_exp": "08/2030", "token": "tok"}
BOLETO = {"method": "boleto", "boleto_line": "2" * 47, "boleto_due_date": date(2026, 12, 1)}
PIX = {"method": "pix", "pix_code": "00020126..."}


class TestOrderCodes:
    def test_a_code_is_ped_and_eight_base32_characters(self):
        assert domain.new_order_code(lambda size: b"\x00" * size) == "PED-AAAAAAAA"
        assert domain.new_order_code(lambda size: b"\xff" * size) == "PED-77777777"
        assert domain.ORDER_CODE.match(domain.new_order_code())

    def test_codes_come_from_the_operating_systems_csprng(self):
        assert inspect.signature(domain.new_order_code).parameters["random_bytes"].default is secrets.token_bytes

    @given(st.binary(min_size=5, max_size=5), st.binary(min_size=5, max_size=5))
    def test_different_random_bytes_give_different_codes(self, first, second):
        codes = (domain.new_order_code(lambda _: first), domain.new_order_code(lambda _: second))
        assert (codes[0] == codes[1]) == (first == second)
        assert all(domain.ORDER_CODE.match(code) for code in codes)


class TestBoletoLines:
    def test_the_printed_line_is_kept_as_its_digits(self):
        line = "23793.38102 90000.001231 45012.345604 1 12340000004700"
        assert domain.normalize_boleto_line(line) == "23793381029000000123145012345604112340000004700"

    @pytest.mark.parametrize("raw", ["2" * 46, "2" * 48, "2" * 46 + "x", "", None])
    def test_anything_but_47_digits_is_refused(self, raw):
        with pytest.raises(ValueError):
            domain.normalize_boleto_line(raw)


class TestPayments:
    @pytest.mark.parametrize("payment", [CARD, BOLETO, PIX, {**CARD, "token": None, "card_exp": None}])
    def test_each_method_with_its_fields(self, payment):
        assert domain.payment_problems(payment) == {}

    def test_missing_fields_are_named(self):
        assert set(domain.payment_problems({"method": "boleto"})) == {"boleto_line", "boleto_due_date"}
        assert set(domain.payment_problems({"method": "pix"})) == {"pix_code"}
        assert set(domain.payment_problems({"method": "credit_card"})) == {"card_brand", "card_last4"}

    def test_no_method_carries_another_ones_fields(self):
        assert set(domain.payment_problems({**PIX, "card_last4": "4242", "token": "tok"})) == {"card_last4", "token"}
        assert set(domain.payment_problems({**CARD, "pix_code": "000201"})) == {"pix_code"}


class TestOrders:
    def order(self, **changes):
        return {"payment": CARD, "installments": 1, "status": "paid", "paid_at": None,
                "subscription_id": None, "cycle_number": None, **changes}

    def test_a_plain_paid_order_has_no_problems(self):
        assert domain.order_problems(self.order()) == {}

    @given(st.integers(min_value=1, max_value=12), st.sampled_from([CARD, BOLETO, PIX]))
    def test_installments_are_for_cards_only(self, installments, payment):
        problems = domain.order_problems(self.order(installments=installments, payment=payment))
        assert ("installments" in problems) == (installments > 1 and payment is not CARD)

    @pytest.mark.parametrize("status", domain.ORDER_STATUSES)
    def test_only_settled_orders_have_a_payment_date(self, status):
        problems = domain.order_problems(self.order(status=status, paid_at=datetime(2026, 11, 1, tzinfo=timezone.utc)))
        assert ("paid_at" in problems) == (status not in ("paid", "partially_refunded", "refunded"))

    def test_a_subscription_order_names_its_cycle(self):
        assert "cycle_number" in domain.order_problems(self.order(subscription_id="x"))
        assert "cycle_number" in domain.order_problems(self.order(cycle_number=1))
        assert domain.order_problems(self.order(subscription_id="x", cycle_number=1)) == {}

    def test_payment_problems_are_nested_under_payment(self):
        assert domain.order_problems(self.order(payment={"method": "pix"})) == {"payment": {"pix_code": ["Required for pix."]}}

    def test_the_payment_date_defaults_to_the_creation_for_settled_orders(self):
        created = datetime(2026, 11, 1, tzinfo=timezone.utc)
        given_date = datetime(2026, 11, 2, tzinfo=timezone.utc)
        assert domain.paid_at("paid", None, created) == created
        assert domain.paid_at("refunded", given_date, created) == given_date
        assert domain.paid_at("pending", None, created) is None


class TestRefunds:
    def test_a_request_without_amount_gives_back_all_that_is_left(self):
        assert domain.refund_amount(None, 4990, 2000) == 2990
        assert domain.refund_amount(1000, 4990, 2000) == 1000

    @given(st.integers(min_value=1, max_value=10_000), st.integers(min_value=0, max_value=10_000),
           st.integers(min_value=1, max_value=10_000))
    def test_never_more_than_was_paid_in_total(self, paid, committed, amount):
        problems = domain.refund_problems("paid", amount, paid, committed)
        assert (problems == {}) == (committed + amount <= paid)

    @pytest.mark.parametrize("status", domain.ORDER_STATUSES)
    def test_only_a_paid_order_is_refunded(self, status):
        problems = domain.refund_problems(status, 100, 4990, 0)
        assert ("code" in problems) == (status not in ("paid", "partially_refunded"))

    def test_a_final_refund_stays_final_and_the_order_follows_the_confirmed_total(self):
        assert domain.settled_refund_status("pending", "done") == "done"
        assert domain.settled_refund_status("pending", "pending") is None
        assert domain.settled_refund_status("pending_manual", "done") == "done"
        assert all(domain.settled_refund_status(final, answer) is None
                   for final in ("done", "failed") for answer in domain.REFUND_STATUSES)
        assert domain.refunded_status(4990, 2000) == "partially_refunded"
        assert domain.refunded_status(4990, 4990) == "refunded"
