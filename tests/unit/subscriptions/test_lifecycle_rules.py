"""The subscription's lifecycle as plain functions: statuses, cancellation, renewal
retries, charge keys and repeated buyer requests."""
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.subscriptions import domain

UTC = timezone.utc
DUE = datetime(2026, 12, 1, 12, tzinfo=UTC)
DAY = timedelta(days=1)


class TestStatuses:
    @pytest.mark.parametrize("status, new_status", [
        ("active", "past_due"), ("active", "canceled"), ("active", "expired"),
        ("past_due", "active"), ("past_due", "canceled"),
    ])
    def test_allowed(self, status, new_status):
        assert domain.transition(status, new_status) == new_status

    @pytest.mark.parametrize("status, new_status", [
        ("canceled", "active"), ("canceled", "past_due"), ("expired", "active"),
        ("past_due", "expired"), ("active", "active"), ("canceled", "canceled"),
    ])
    def test_refused(self, status, new_status):
        with pytest.raises(domain.IllegalTransition):
            domain.transition(status, new_status)

    def test_only_active_and_past_due_are_still_charged(self):
        assert [status for status in domain.SUBSCRIPTION_STATUSES if domain.is_open(status)] == ["active", "past_due"]


class TestCancellation:
    def test_the_merchants_mode_decides_for_an_active_subscription(self):
        assert domain.cancellation_timing("active", "at_period_end") == domain.CANCEL_AT_PERIOD_END
        assert domain.cancellation_timing("active", "immediately") == domain.CANCEL_NOW

    def test_a_past_due_one_has_no_paid_period_left_to_wait_for(self):
        assert domain.cancellation_timing("past_due", "at_period_end") == domain.CANCEL_NOW

    def test_refusals(self):
        assert domain.cancel_refusal("canceled", False).code == "subscription_not_active"
        assert domain.cancel_refusal("expired", False).code == "subscription_not_active"
        assert domain.cancel_refusal("active", True).code == "cancellation_already_scheduled"
        assert domain.cancel_refusal("active", False) is None
        assert domain.cancel_refusal("past_due", False) is None

    def test_undo_while_the_period_has_not_ended(self):
        assert domain.undo_cancel_refusal("active", True, DUE, DUE - timedelta(microseconds=1)) is None
        assert domain.undo_cancel_refusal("active", True, DUE, DUE).code == "period_ended"
        assert domain.undo_cancel_refusal("active", False, DUE, DUE - DAY).code == "no_scheduled_cancellation"
        assert domain.undo_cancel_refusal("canceled", True, DUE, DUE - DAY).code == "no_scheduled_cancellation"

    def test_the_reason_list(self):
        assert domain.CANCEL_FEEDBACK == (
            "too_expensive", "not_using", "missing_features", "switching_service", "technical_issues", "other")


class TestPaymentMethod:
    def test_refusals(self):
        allowed = ["credit_card", "pix"]
        assert domain.payment_method_refusal("canceled", "pix", allowed).code == "subscription_not_active"
        assert domain.payment_method_refusal("active", "boleto", allowed).code == "method_not_allowed"
        assert domain.payment_method_refusal("past_due", "pix", allowed) is None


class TestRenewalSchedule:
    def test_retries_one_three_and_five_days_after_the_first_failed_attempt_then_none(self):
        attempts = [DUE]
        while (retry := domain.next_retry_at(DUE, attempts[-1])) is not None:
            attempts.append(retry)
        assert attempts == [DUE, DUE + DAY, DUE + 3 * DAY, DUE + 5 * DAY]

    @given(st.integers(min_value=0, max_value=10 * 24 * 3600))
    def test_a_late_pass_takes_the_next_retry_still_ahead(self, seconds_late):
        attempted = DUE + timedelta(seconds=seconds_late)
        retry = domain.next_retry_at(DUE, attempted)
        remaining = [DUE + days * DAY for days in (1, 3, 5) if DUE + days * DAY > attempted]
        assert retry == (remaining[0] if remaining else None)

    @given(st.integers(min_value=0, max_value=60 * 24 * 3600), st.integers(min_value=0, max_value=3))
    def test_a_retry_is_always_after_the_attempt_that_failed(self, seconds_late, retries_made):
        """One attempt per subscription per pass: whatever the delay, what follows a
        failed attempt is never due at that attempt's moment."""
        first_failed_at = DUE + timedelta(seconds=seconds_late)
        attempted = first_failed_at + timedelta(days=(0, 1, 3, 5)[retries_made])
        step = domain.after_renewal_charge("failed", "credit_card", DUE, first_failed_at, attempted)
        assert step.action == domain.CANCEL_FOR_NON_PAYMENT or step.at > attempted

    def test_a_renewal_taken_up_late_is_retried_from_its_first_attempt(self):
        late = DUE + 3 * DAY
        step = domain.after_renewal_charge("failed", "credit_card", DUE, None, late)
        assert step == domain.RenewalStep(domain.RETRY_LATER, late + DAY)

    def test_a_missed_cycle_is_never_billed(self):
        # A monthly cycle that ended 3 days before the attempt: the next follows it.
        assert domain.renewed_cycle_start(DUE, 1, DUE + 3 * DAY) == DUE
        # One that ended over a month before: one cycle from the attempt.
        assert domain.renewed_cycle_start(DUE, 1, DUE + 40 * DAY) == DUE + 40 * DAY
        assert domain.renewed_cycle_start(DUE, 1, domain.add_months(DUE, 1)) == domain.add_months(DUE, 1)

    def test_cards_are_charged_on_the_due_date_and_boleto_pix_issued_ahead(self):
        ahead = 3 * DAY
        assert domain.renewal_run_at("credit_card", DUE, ahead) == DUE
        assert domain.renewal_run_at("boleto", DUE, ahead) == DUE - ahead
        assert domain.renewal_run_at("pix", DUE, ahead) == DUE - ahead

    def test_the_first_run_of_a_registered_subscription(self):
        ahead = 3 * DAY
        assert domain.initial_renewal_run_at("active", "pix", DUE, ahead) == DUE - ahead
        assert domain.initial_renewal_run_at("past_due", "pix", DUE + DAY, ahead) == DUE + DAY
        assert domain.initial_renewal_run_at("canceled", "pix", None, ahead) is None

    def test_charge_keys_number_the_attempts_of_a_cycle(self):
        assert domain.charge_key("sub-1", 4, 1) == "renewal:sub-1:4"
        assert domain.charge_key("sub-1", 4, 2) == "retry:sub-1:4:1"
        assert domain.charge_key("sub-1", 4, 4) == "retry:sub-1:4:3"
        assert domain.plan_change_key("q-1") == "plan_change:q-1"

    @pytest.mark.parametrize("status, outcome", [
        ("paid", "paid"), ("pending", "waiting"), ("pending_confirmation", "waiting"),
        ("refused", "failed"), ("canceled", "failed"), ("expired", "failed"), ("refunded", "failed"),
    ])
    def test_what_an_order_status_means_for_its_charge(self, status, outcome):
        assert domain.charge_outcome(status) == outcome


class TestAfterARenewalCharge:
    def step(self, outcome, method, now, first_failed_at=DUE):
        return domain.after_renewal_charge(outcome, method, DUE, first_failed_at, now)

    def test_paid_renews(self):
        assert self.step("paid", "credit_card", DUE).action == domain.RENEW

    def test_refused_makes_it_past_due_until_the_next_retry(self):
        assert self.step("failed", "credit_card", DUE) == domain.RenewalStep(domain.RETRY_LATER, DUE + DAY)
        assert self.step("failed", "credit_card", DUE + DAY) == domain.RenewalStep(domain.RETRY_LATER, DUE + 3 * DAY)
        assert self.step("failed", "credit_card", DUE + 3 * DAY) == domain.RenewalStep(domain.RETRY_LATER, DUE + 5 * DAY)

    def test_the_last_retry_failing_cancels(self):
        assert self.step("failed", "credit_card", DUE + 5 * DAY).action == domain.CANCEL_FOR_NON_PAYMENT

    def test_an_unknown_card_answer_is_asked_again_later(self):
        step = self.step("waiting", "credit_card", DUE)
        assert step == domain.RenewalStep(domain.CHECK_AGAIN, DUE + domain.CARD_RECHECK_AFTER)

    def test_a_boleto_issued_ahead_waits_for_the_due_date(self):
        issued_at = DUE - 3 * DAY
        assert self.step("waiting", "boleto", issued_at) == domain.RenewalStep(domain.CHECK_AGAIN, DUE)

    def test_a_boleto_unpaid_on_the_due_date_is_past_due_then_canceled(self):
        assert self.step("waiting", "pix", DUE) == domain.RenewalStep(domain.RETRY_LATER, DUE + DAY)
        assert self.step("waiting", "pix", DUE + 5 * DAY).action == domain.CANCEL_FOR_NON_PAYMENT


class TestChargesNotAppliedOrNotMade:
    def test_a_charge_billing_refused_to_make_is_a_failed_attempt_with_its_reason(self):
        assert domain.refused_charge_reason({"payment_token": ["Unknown for this buyer."]}) == "payment_method_unusable"
        assert domain.refused_charge_reason({"method": ["Not a valid choice."]}) == "payment_method_unusable"
        assert domain.refused_charge_reason({"product_name": ["Too long."]}) == "charge_not_accepted"
        first = domain.after_failed_attempt(None, DUE)
        assert first == domain.RenewalStep(domain.RETRY_LATER, DUE + DAY)
        assert domain.after_failed_attempt(DUE, DUE + 5 * DAY).action == domain.CANCEL_FOR_NON_PAYMENT

    @pytest.mark.parametrize("order, not_applied", [
        (None, False),
        ({"status": "paid"}, True),
        ({"status": "pending"}, False),
        ({"status": "pending_confirmation"}, False),
        ({"status": "refused"}, False),
    ])
    def test_an_ending_subscription_leaves_a_paid_renewal_order_not_applied(self, order, not_applied):
        assert domain.paid_but_not_applied(order) is not_applied


class TestRepeatedRequests:
    NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)

    def test_the_fingerprint_depends_on_what_was_asked(self):
        first = domain.request_fingerprint("cancel", ["sub-1", {"reason": "other", "comment": None}])
        assert first == domain.request_fingerprint("cancel", ["sub-1", {"comment": None, "reason": "other"}])
        assert first != domain.request_fingerprint("cancel", ["sub-1", {"reason": "too_expensive", "comment": None}])
        assert first != domain.request_fingerprint("undo_cancel", ["sub-1", {"reason": "other", "comment": None}])

    def test_decisions(self):
        started = self.NOW - timedelta(seconds=5)
        assert domain.repeated_request("a", "done", started, "a", self.NOW) == domain.REPLAY
        assert domain.repeated_request("a", "done", started, "b", self.NOW) == domain.KEY_REUSED
        assert domain.repeated_request("a", "running", started, "b", self.NOW) == domain.KEY_REUSED
        assert domain.repeated_request("a", "running", started, "a", self.NOW) == domain.IN_PROGRESS
        abandoned = self.NOW - domain.ABANDONED_AFTER
        assert domain.repeated_request("a", "running", abandoned, "a", self.NOW) == domain.TAKE_OVER

    def test_a_key_belongs_to_the_buyer_within_the_sessions_merchant_scope(self):
        def owner(merchant_id):
            return domain.request_owner({"email": "ana@example.com", "merchant_id": merchant_id, "session_id": "s"})

        assert owner("acme-cursos") == ("ana@example.com", "acme-cursos")
        assert len({owner(None), owner("acme-cursos"), owner("beta-software")}) == 3


def test_a_renewal_uses_the_balance_first():
    assert domain.apply_balance(2990, 0) == (2990, 0)
    assert domain.apply_balance(2990, 1000) == (1990, 0)
    assert domain.apply_balance(2990, 5000) == (0, 2010)


@pytest.mark.parametrize("kind, settled_at_charge, left", [
    ("renewal", True, True),     # the job's first charge, answered to the job
    ("renewal", False, False),   # a boleto/pix paid later, a lost card answer reconciled
    ("retry", True, False),      # a buyer's "pay now" may have lost its answer
    ("plan_change", True, False),
])
def test_only_the_renewal_jobs_own_answered_charge_is_left_to_the_job(kind, settled_at_charge, left):
    assert domain.left_to_the_renewal_job({"kind": kind, "settled_at_charge": settled_at_charge}) is left
