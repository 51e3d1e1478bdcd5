"""Subscription rules as plain functions."""
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from services.subscriptions import domain

nine_digits = st.text(alphabet="0123456789", min_size=9, max_size=9)
twelve_digits = st.text(alphabet="0123456789", min_size=12, max_size=12)
aware_datetimes = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2090, 12, 31), timezones=st.just(timezone.utc),
)


class TestDocuments:
    @pytest.mark.parametrize("raw, expected", [
        ("123.456.789-09", "123.456.789-09"),
        ("12345678909", "123.456.789-09"),
        ("11.222.333/0001-81", "11.222.333/0001-81"),
        ("11222333000181", "11.222.333/0001-81"),
    ])
    def test_valid_documents_come_out_punctuated(self, raw, expected):
        assert domain.normalize_document(raw) == expected

    @pytest.mark.parametrize("raw", [
        "123.456.789-00", "111.111.111-11", "1234567890", "11.222.333/0001-80", "abc", "", None,
    ])
    def test_invalid_documents_are_refused(self, raw):
        with pytest.raises(ValueError):
            domain.normalize_document(raw)

    @given(nine_digits)
    def test_any_cpf_with_its_check_digits_is_valid(self, first_nine):
        assume(len(set(first_nine)) > 1)
        digits = first_nine + domain.cpf_check_digits(first_nine)
        assert domain.normalize_document(digits).replace(".", "").replace("-", "") == digits

    @given(nine_digits, st.integers(min_value=1, max_value=9), st.integers(min_value=9, max_value=10))
    def test_a_wrong_check_digit_is_refused(self, first_nine, shift, position):
        assume(len(set(first_nine)) > 1)
        digits = list(first_nine + domain.cpf_check_digits(first_nine))
        digits[position] = str((int(digits[position]) + shift) % 10)
        with pytest.raises(ValueError):
            domain.normalize_document("".join(digits))

    @given(twelve_digits)
    def test_any_cnpj_with_its_check_digits_is_valid(self, first_twelve):
        assume(len(set(first_twelve)) > 1)
        digits = first_twelve + domain.cnpj_check_digits(first_twelve)
        assert domain.normalize_document(digits).replace(".", "").replace("/", "").replace("-", "") == digits


class TestAddMonths:
    def test_the_end_of_january_plus_a_month_is_the_end_of_february(self):
        assert domain.add_months(datetime(2026, 1, 31, 9, tzinfo=timezone.utc), 1) == datetime(2026, 2, 28, 9, tzinfo=timezone.utc)
        assert domain.add_months(datetime(2028, 1, 31, tzinfo=timezone.utc), 1).day == 29

    def test_a_year_later_and_earlier(self):
        moment = datetime(2026, 11, 26, 13, 45, tzinfo=timezone.utc)
        assert domain.add_months(moment, 12) == datetime(2027, 11, 26, 13, 45, tzinfo=timezone.utc)
        assert domain.add_months(moment, -11) == datetime(2025, 12, 26, 13, 45, tzinfo=timezone.utc)

    @given(aware_datetimes, st.integers(min_value=-120, max_value=120))
    def test_lands_in_the_right_month_on_the_same_day_or_the_months_last(self, moment, months):
        result = domain.add_months(moment, months)
        assert (result.year * 12 + result.month) - (moment.year * 12 + moment.month) == months
        assert result.day == moment.day or (result.day < moment.day and (result + timedelta(days=1)).day == 1)
        assert (result.time(), result.tzinfo) == (moment.time(), moment.tzinfo)


class TestNextCharge:
    END = datetime(2026, 12, 1, tzinfo=timezone.utc)

    def test_an_active_subscription_renews_at_the_end_of_its_cycle(self):
        assert domain.initial_next_charge_at("active", self.END) == self.END

    def test_a_past_due_one_is_retried_a_day_after_the_failed_renewal(self):
        assert domain.initial_next_charge_at("past_due", self.END) == self.END + timedelta(days=1)

    @pytest.mark.parametrize("status", ["canceled", "expired"])
    def test_an_ended_one_is_never_charged(self, status):
        assert domain.initial_next_charge_at(status, self.END) is None


class TestOrigins:
    @pytest.mark.parametrize("value", ["https://acme.example.com", "http://localhost:8080"])
    def test_bare_origins(self, value):
        assert domain.is_origin(value)

    @pytest.mark.parametrize("value", [
        "https://acme.example.com/", "https://acme.example.com/path", "acme.example.com",
        "ftp://acme.example.com", "https://user@acme.example.com", "https://acme.example.com?x=1",
        "https://acme.example.com:99999", "https://",
    ])
    def test_anything_else(self, value):
        assert not domain.is_origin(value)


class TestOffers:
    def offer(self, **changes):
        return {"id": "basico", "periodicity_months": 1, "max_installments": 1, "plan_change_options": [], **changes}

    @given(st.sampled_from(domain.PERIODICITIES_MONTHS), st.integers(min_value=1, max_value=12))
    def test_installments_never_exceed_the_months_of_a_cycle(self, periodicity, installments):
        problems = domain.offer_problems(self.offer(periodicity_months=periodicity, max_installments=installments), set())
        assert ("max_installments" in problems) == (installments > periodicity)

    def test_options_must_be_other_offers_of_the_same_merchant(self):
        problems = domain.offer_problems(
            self.offer(plan_change_options=["basico", "premium", "elsewhere"]), {"basico", "premium"},
        )
        assert problems == {"plan_change_options": [
            "An offer cannot switch to itself.", "Not offers of this merchant: elsewhere.",
        ]}

    def test_a_valid_offer_has_no_problems(self):
        assert domain.offer_problems(self.offer(plan_change_options=["premium"]), {"basico", "premium"}) == {}


class TestMerchants:
    def test_an_enabled_method_change_needs_methods(self):
        problems = domain.merchant_problems({"customer_can_change_payment_method": True, "payment_methods_allowed": []})
        assert list(problems) == ["payment_methods_allowed"]

    def test_origins_are_checked(self):
        problems = domain.merchant_problems({"allowed_origins": ["https://ok.example.com", "https://bad.example.com/x"]})
        assert problems == {"allowed_origins": ["Not a bare origin (scheme://host[:port]): https://bad.example.com/x."]}


class TestSubscriptions:
    CARD = {"method": "credit_card", "card_brand": "visa", "card_last4": "4242", "card_exp": "08/2030", "token": "tok"}

    def subscription(self, **changes):
        start = datetime(2026, 11, 1, tzinfo=timezone.utc)
        return {
            "cycle_start": start, "cycle_end": start + timedelta(days=30), "installments": 1,
            "status": "active", "cancel_reason": None, "payment": self.CARD, **changes,
        }

    def test_a_card_is_its_token_brand_last_four_and_expiry(self):
        assert domain.payment_problems(self.CARD) == {}
        assert set(domain.payment_problems({"method": "credit_card"})) == {"card_brand", "card_last4", "card_exp", "token"}

    def test_boleto_and_pix_carry_no_card(self):
        assert domain.payment_problems({"method": "pix"}) == {}
        assert list(domain.payment_problems({"method": "boleto", "card_last4": "4242"})) == ["card_last4"]

    def test_the_cycle_must_end_after_it_starts(self):
        start = datetime(2026, 11, 1, tzinfo=timezone.utc)
        problems = domain.subscription_problems(self.subscription(cycle_end=start), 1)
        assert list(problems) == ["cycle_end"]

    @given(st.integers(min_value=1, max_value=12), st.integers(min_value=1, max_value=12))
    def test_installments_are_capped_by_the_offer(self, installments, cap):
        problems = domain.subscription_problems(self.subscription(installments=installments), cap)
        assert ("installments" in problems) == (installments > cap)

    def test_installments_are_for_cards_only(self):
        problems = domain.subscription_problems(self.subscription(installments=2, payment={"method": "boleto"}), 12)
        assert problems == {"installments": ["Installments are for credit_card only."]}

    def test_a_cancel_reason_belongs_to_a_canceled_subscription(self):
        assert "cancel_reason" in domain.subscription_problems(self.subscription(cancel_reason="buyer"), 1)
        assert domain.subscription_problems(self.subscription(status="canceled", cancel_reason="buyer"), 1) == {}
