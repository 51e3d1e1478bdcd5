"""Plan change as DESIGN.md states it: classification, proration, credit, balance and
the installment cap, exact to the cent on cycles of every periodicity and month length."""
import calendar
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.subscriptions import domain
from services.subscriptions.domain import OfferTerms

UTC = timezone.utc


def oracle_cents(numerator, denominator):
    """numerator/denominator cents rounded half up, by decimal arithmetic (an independent check)."""
    with localcontext() as context:
        context.prec = 60
        exact = Decimal(numerator) / Decimal(denominator)
        return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def microseconds(delta):
    return delta // timedelta(microseconds=1)


@st.composite
def cycle_starts(draw):
    """Any start, with month ends (28–31) drawn as often as any other day."""
    year = draw(st.integers(min_value=2020, max_value=2060))
    month = draw(st.integers(min_value=1, max_value=12))
    day = draw(st.one_of(st.integers(min_value=1, max_value=31), st.sampled_from([28, 29, 30, 31])))
    day = min(day, calendar.monthrange(year, month)[1])
    return datetime(
        year, month, day, draw(st.integers(0, 23)), draw(st.integers(0, 59)), draw(st.integers(0, 59)),
        draw(st.integers(0, 999_999)), tzinfo=UTC,
    )


@st.composite
def offers(draw, periodicity=None):
    months = periodicity or draw(st.sampled_from(domain.PERIODICITIES_MONTHS))
    return OfferTerms(
        price_cents=draw(st.integers(min_value=1, max_value=10_000_000)),
        periodicity_months=months,
        max_installments=draw(st.integers(min_value=1, max_value=months)),
    )


@st.composite
def situations(draw):
    """A current offer, its cycle, a moment inside it, and an offer to switch to."""
    current = draw(offers())
    start = draw(cycle_starts())
    end = domain.add_months(start, current.periodicity_months)
    now = start + timedelta(microseconds=draw(st.integers(min_value=0, max_value=microseconds(end - start))))
    new = draw(offers())
    method = draw(st.sampled_from(domain.PAYMENT_METHODS))
    balance = draw(st.integers(min_value=0, max_value=1_000_000))
    return current, new, start, end, now, method, balance


class TestRoundingAndTime:
    @given(st.integers(min_value=-10**12, max_value=10**12), st.integers(min_value=1, max_value=10**9))
    def test_rounds_half_up_like_decimal(self, numerator, denominator):
        assert domain.round_half_up(Fraction(numerator, denominator)) == oracle_cents(numerator, denominator)

    def test_a_half_cent_goes_up(self):
        assert domain.round_half_up(Fraction(1, 2)) == 1
        assert domain.round_half_up(Fraction(3, 2)) == 2
        assert domain.round_half_up(Fraction(149, 100)) == 1

    @given(cycle_starts(), st.sampled_from(domain.PERIODICITIES_MONTHS), st.integers(min_value=-10**11, max_value=4 * 10**13))
    def test_the_remaining_share_is_exact_and_within_the_cycle(self, start, months, offset):
        end = domain.add_months(start, months)
        now = start + timedelta(microseconds=offset)
        share = domain.remaining_share(start, end, now)
        assert 0 <= share <= 1
        if start <= now <= end:
            assert share == Fraction(microseconds(end - now), microseconds(end - start))

    @pytest.mark.parametrize("start, end, months", [
        (datetime(2026, 1, 31, tzinfo=UTC), datetime(2026, 2, 28, tzinfo=UTC), 1),
        (datetime(2026, 1, 15, 10, tzinfo=UTC), datetime(2026, 5, 15, 9, tzinfo=UTC), 3),
        (datetime(2026, 1, 15, 10, tzinfo=UTC), datetime(2026, 5, 15, 10, tzinfo=UTC), 4),
        (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 31, tzinfo=UTC), 0),
        (datetime(2026, 3, 31, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC), 0),
    ])
    def test_whole_calendar_months(self, start, end, months):
        assert domain.whole_months_between(start, end) == months

    @given(cycle_starts(), st.integers(min_value=0, max_value=10**14))
    def test_whole_months_are_the_most_that_fit(self, start, offset):
        end = start + timedelta(microseconds=offset)
        months = domain.whole_months_between(start, end)
        assert months == 0 or domain.add_months(start, months) <= end
        assert domain.add_months(start, months + 1) > end


class TestClassification:
    @pytest.mark.parametrize("current, new, kind", [
        (OfferTerms(2990, 1), OfferTerms(5990, 1), domain.UPGRADE),
        (OfferTerms(5990, 1), OfferTerms(2990, 1), domain.SCHEDULED),
        (OfferTerms(2990, 1), OfferTerms(2990, 1), domain.SCHEDULED),
        (OfferTerms(5990, 1), OfferTerms(59900, 12), domain.NEW_CYCLE),
        # Longer is immediate even when cheaper per month.
        (OfferTerms(60000, 6), OfferTerms(50000, 12), domain.NEW_CYCLE),
        (OfferTerms(59900, 12), OfferTerms(5990, 1), domain.SCHEDULED),
        (OfferTerms(59900, 12), OfferTerms(90000, 6), domain.SCHEDULED),
    ])
    def test_examples(self, current, new, kind):
        assert domain.classify_plan_change(current, new) == kind


class TestQuoteProperties:
    @given(situations())
    def test_the_charge_is_never_negative_nor_above_the_new_price(self, situation):
        current, new, start, end, now, method, balance = situation
        quote = domain.quote_plan_change(current, new, start, end, now, method, balance)
        assert 0 <= quote.charge_cents <= new.price_cents
        assert 0 <= quote.credit_cents <= current.price_cents
        assert quote.balance_cents >= balance
        assert 0 <= quote.next_renewal_cents <= new.price_cents

    @given(situations())
    def test_amounts_are_exact_to_the_cent(self, situation):
        current, new, start, end, now, method, balance = situation
        quote = domain.quote_plan_change(current, new, start, end, now, method, balance)
        left, total = microseconds(end - now), microseconds(end - start)
        assert quote.credit_cents == oracle_cents(current.price_cents * left, total)
        kind = domain.classify_plan_change(current, new)
        if kind == domain.UPGRADE:
            assert quote.charge_cents == oracle_cents((new.price_cents - current.price_cents) * left, total)
            assert quote.balance_cents == balance
        elif kind == domain.NEW_CYCLE:
            due = new.price_cents * total - current.price_cents * left
            assert quote.charge_cents == max(oracle_cents(due, total), 0)
            assert quote.balance_cents == balance + max(oracle_cents(-due, total), 0)
            # The credit pays part of the price, or all of it with the rest kept.
            assert quote.charge_cents == 0 or quote.balance_cents == balance
        else:
            assert (quote.charge_cents, quote.balance_cents) == (0, balance)

    @given(situations())
    def test_the_installment_cap_never_exceeds_the_months_left(self, situation):
        current, new, start, end, now, method, balance = situation
        quote = domain.quote_plan_change(current, new, start, end, now, method, balance)
        assert 1 <= quote.max_installments <= new.max_installments
        if quote.kind == domain.UPGRADE:
            months_left = domain.whole_months_between(now, end)
            assert quote.max_installments <= max(months_left, 1)
            assert quote.max_installments == 1 or domain.add_months(now, quote.max_installments) <= end
        if quote.kind == domain.NEW_CYCLE:
            assert quote.max_installments <= new.periodicity_months
        if method != "credit_card" or quote.charge_cents == 0 or quote.kind == domain.SCHEDULED:
            assert quote.max_installments == 1

    @given(situations())
    def test_when_it_takes_effect_and_the_next_renewal(self, situation):
        current, new, start, end, now, method, balance = situation
        quote = domain.quote_plan_change(current, new, start, end, now, method, balance)
        if quote.kind == domain.SCHEDULED:
            assert (quote.takes_effect, quote.effective_at, quote.next_renewal_at) == ("cycle_end", end, end)
            assert quote.cycle_start == end
        elif quote.kind == domain.UPGRADE:
            assert (quote.cycle_start, quote.cycle_end, quote.next_renewal_at) == (start, end, end)
        else:
            assert (quote.cycle_start, quote.next_renewal_at) == (now, domain.add_months(now, new.periodicity_months))
        assert quote.cycle_end == domain.add_months(quote.cycle_start, new.periodicity_months) or quote.kind == domain.UPGRADE
        if quote.kind != domain.SCHEDULED:
            expected = "on_payment" if method != "credit_card" and quote.charge_cents > 0 else "now"
            assert quote.takes_effect == expected
        assert quote.next_renewal_cents == max(new.price_cents - quote.balance_cents, 0)


class TestWorkedExamples:
    def test_four_months_left_allow_at_most_four_installments(self):
        current, new = OfferTerms(60000, 6, 6), OfferTerms(120000, 6, 6)
        start, end = datetime(2026, 1, 15, 12, tzinfo=UTC), datetime(2026, 7, 15, 12, tzinfo=UTC)
        now = datetime(2026, 3, 15, 12, tzinfo=UTC)
        quote = domain.quote_plan_change(current, new, start, end, now, "credit_card")
        assert quote.kind == domain.UPGRADE
        assert quote.max_installments == 4
        # 122 of 181 days left: 60000 * 122 / 181 = 40441.98… → R$ 404,42.
        assert quote.charge_cents == 40442
        assert domain.installments_refusal(5, quote.max_installments) == domain.Refusal(
            "installments_above_cap", "Em até 4x: escolha no máximo 4 parcelas.")
        assert domain.installments_refusal(4, quote.max_installments) is None

    def test_an_hour_short_of_four_months_allows_three(self):
        quote = domain.quote_plan_change(
            OfferTerms(60000, 6, 6), OfferTerms(120000, 6, 6),
            datetime(2026, 1, 15, 12, tzinfo=UTC), datetime(2026, 7, 15, 12, tzinfo=UTC),
            datetime(2026, 3, 15, 13, tzinfo=UTC), "credit_card",
        )
        assert quote.max_installments == 3

    def test_monthly_upgrade_halfway(self):
        start = datetime(2026, 11, 1, tzinfo=UTC)
        quote = domain.quote_plan_change(
            OfferTerms(2990, 1), OfferTerms(5990, 1), start, start + timedelta(days=30),
            start + timedelta(days=15), "credit_card",
        )
        assert (quote.charge_cents, quote.credit_cents, quote.max_installments) == (1500, 1495, 1)
        assert (quote.next_renewal_at, quote.next_renewal_cents) == (start + timedelta(days=30), 5990)

    def test_a_half_cent_is_charged_as_a_cent(self):
        start = datetime(2026, 11, 1, tzinfo=UTC)
        quote = domain.quote_plan_change(
            OfferTerms(1000, 1), OfferTerms(1001, 1), start, start + timedelta(days=30),
            start + timedelta(days=15), "credit_card",
        )
        assert quote.charge_cents == 1

    def test_monthly_to_annual_starts_a_new_cycle_with_credit(self):
        start = datetime(2026, 11, 1, tzinfo=UTC)
        now = start + timedelta(days=20)
        quote = domain.quote_plan_change(
            OfferTerms(2990, 1), OfferTerms(59900, 12, 12), start, start + timedelta(days=30), now, "credit_card",
        )
        # 10 of 30 days unused: 2990 / 3 = 996.67 credit; 59900 - 996.67 = 58903.33 → 58903.
        assert (quote.kind, quote.credit_cents, quote.charge_cents, quote.balance_cents) == ("new_cycle", 997, 58903, 0)
        assert (quote.cycle_start, quote.cycle_end) == (now, datetime(2027, 11, 21, tzinfo=UTC))
        assert quote.max_installments == 12

    def test_credit_beyond_the_new_price_is_kept_as_balance(self):
        start = datetime(2026, 1, 1, tzinfo=UTC)
        end = domain.add_months(start, 6)
        now = start + (end - start) / 10
        quote = domain.quote_plan_change(OfferTerms(60000, 6, 6), OfferTerms(50000, 12, 12), start, end, now, "pix", 700)
        # 90% of 600,00 unused = 540,00: the annual 500,00 is paid by it, 40,00 kept.
        assert (quote.charge_cents, quote.balance_cents, quote.max_installments) == (0, 4700, 1)
        assert quote.takes_effect == "now"
        assert quote.next_renewal_cents == 50000 - 4700

    def test_downgrade_and_shorter_periodicity_wait_for_the_cycle_end(self):
        start = datetime(2026, 1, 10, tzinfo=UTC)
        end = domain.add_months(start, 12)
        quote = domain.quote_plan_change(
            OfferTerms(59900, 12, 12), OfferTerms(2990, 1), start, end, start + timedelta(days=40), "credit_card",
        )
        assert (quote.kind, quote.charge_cents, quote.takes_effect, quote.effective_at) == (
            "scheduled", 0, "cycle_end", end)
        assert (quote.next_renewal_at, quote.next_renewal_cents) == (end, 2990)

    def test_boleto_and_pix_take_effect_when_paid_in_one_installment(self):
        start = datetime(2026, 11, 1, tzinfo=UTC)
        for method in ("boleto", "pix"):
            quote = domain.quote_plan_change(
                OfferTerms(2990, 1), OfferTerms(59900, 12, 12), start, start + timedelta(days=30), start, method,
            )
            assert (quote.takes_effect, quote.effective_at, quote.max_installments) == ("on_payment", None, 1)


class TestPlanChangeRefusals:
    def test_in_order(self):
        options = ["premium"]
        assert domain.plan_change_refusal("past_due", False, False, "premium", options).code == "subscription_not_active"
        assert domain.plan_change_refusal("active", True, False, "premium", options).code == "change_already_pending"
        assert domain.plan_change_refusal("active", False, True, "premium", options).code == "renewal_in_progress"
        assert domain.plan_change_refusal("active", False, False, "other", options).code == "option_not_offered"
        assert domain.plan_change_refusal("active", False, False, "premium", options) is None

    @given(st.integers(min_value=1, max_value=12), st.integers(min_value=1, max_value=12))
    def test_installments_above_the_cap_are_refused_naming_it(self, installments, cap):
        refusal = domain.installments_refusal(installments, cap)
        assert (refusal is None) == (installments <= cap)
        if refusal:
            assert f"{cap}x" in refusal.message

    def test_undo_only_a_scheduled_change_before_the_cycle_ends(self):
        end = datetime(2026, 12, 1, tzinfo=UTC)
        before, after = end - timedelta(seconds=1), end
        assert domain.undo_plan_change_refusal(None, False, end, before).code == "no_pending_change"
        assert domain.undo_plan_change_refusal("awaiting_payment", False, end, before).code == "change_awaiting_payment"
        assert domain.undo_plan_change_refusal("scheduled", False, end, after).code == "period_ended"
        assert domain.undo_plan_change_refusal("scheduled", True, end, before).code == "renewal_already_issued"
        assert domain.undo_plan_change_refusal("scheduled", False, end, before) is None


def test_a_quote_is_valid_ten_minutes():
    assert domain.QUOTE_VALIDITY == timedelta(minutes=10)

