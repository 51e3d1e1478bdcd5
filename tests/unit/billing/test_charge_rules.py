"""Rules of charging, reconciling, card-entry tickets and processor callbacks."""
from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.billing import domain

NOW = datetime(2026, 11, 26, 15, 0, tzinfo=timezone.utc)
PROCESSOR_ANSWERS = ("paid", "refused", "pending", "refunded")


def request(**changes):
    return {"method": "credit_card", "amount_cents": 2990, "installments": 1, "payment_token": "tok", "due_at": None,
            **changes}


class TestClaims:
    def test_nothing_to_charge_is_paid_at_once(self):
        assert domain.claimed_status(0) == "paid"

    @given(st.integers(1, 10**9))
    def test_anything_else_waits_for_the_processor(self, amount):
        assert domain.claimed_status(amount) == "pending_confirmation"


class TestSettlement:
    @pytest.mark.parametrize("answer, status", [("paid", "paid"), ("refused", "refused"), ("pending", "pending")])
    def test_an_unconfirmed_charge_takes_the_processors_answer(self, answer, status):
        assert domain.settled_status("pending_confirmation", answer) == status

    def test_a_pending_boleto_or_pix_can_only_become_paid(self):
        assert domain.settled_status("pending", "paid") == "paid"
        assert [domain.settled_status("pending", answer) for answer in ("refused", "pending", "refunded")] == [None] * 3

    @pytest.mark.parametrize("settled", ["paid", "refused", "refunded", "canceled", "expired"])
    @pytest.mark.parametrize("answer", PROCESSOR_ANSWERS)
    def test_a_settled_order_is_never_settled_again(self, settled, answer):
        assert domain.settled_status(settled, answer) is None

    def test_payment_refusal_and_a_boleto_or_pix_issued_are_announced(self):
        assert domain.EVENT_OF_STATUS == {
            "paid": "order_paid", "refused": "charge_failed", "pending": "order_awaiting_payment"}


class TestReconciling:
    @given(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=30)), st.sampled_from(PROCESSOR_ANSWERS))
    def test_what_the_processor_knows_settles_it_at_any_age(self, age, answer):
        assert domain.reconcile_action(NOW - age, NOW, answer) == "settle"

    def test_a_charge_the_processor_never_saw_is_sent_again_only_after_a_while(self):
        assert domain.reconcile_action(NOW - timedelta(seconds=5), NOW, None) == "wait"
        assert domain.reconcile_action(NOW - domain.RESUBMIT_AFTER + timedelta(seconds=1), NOW, None) == "wait"
        assert domain.reconcile_action(NOW - domain.RESUBMIT_AFTER, NOW, None) == "resubmit"


class TestChargeRequests:
    def test_a_card_charge(self):
        assert domain.charge_problems(request(installments=3)) == {}

    def test_a_free_card_charge_needs_no_token(self):
        assert domain.charge_problems(request(amount_cents=0, payment_token=None)) == {}

    def test_a_paid_card_charge_needs_a_token(self):
        assert set(domain.charge_problems(request(payment_token=None))) == {"payment_token"}

    @pytest.mark.parametrize("method", ["boleto", "pix"])
    def test_boleto_and_pix_take_no_installments_and_no_token(self, method):
        problems = domain.charge_problems(request(method=method, installments=2))
        assert set(problems) == {"installments", "payment_token"}
        assert domain.charge_problems(request(method=method, payment_token=None, due_at=NOW)) == {}

    def test_a_card_has_no_due_date(self):
        assert set(domain.charge_problems(request(due_at=NOW))) == {"due_at"}

    def test_a_boleto_is_due_on_the_day_asked_in_brasilia(self):
        late_evening = datetime(2026, 12, 2, 1, 30, tzinfo=timezone.utc)  # 01/12 22:30 in São Paulo
        assert domain.boleto_due_date(late_evening, NOW) == date(2026, 12, 1)
        assert domain.boleto_due_date(None, NOW) == date(2026, 11, 29)


class TestCardEntryTickets:
    EXPIRES = NOW + timedelta(minutes=15)

    def test_a_fresh_ticket_takes_a_card(self):
        assert domain.ticket_refusal(self.EXPIRES, None, 0, NOW) is None
        assert domain.ticket_refusal(self.EXPIRES, None, domain.TICKET_MAX_ATTEMPTS - 1, NOW) is None

    def test_used_expired_or_spent_tickets_do_not(self):
        assert domain.ticket_refusal(self.EXPIRES, NOW, 1, NOW) == "used"
        assert domain.ticket_refusal(self.EXPIRES, None, 0, self.EXPIRES) == "expired"
        assert domain.ticket_refusal(self.EXPIRES, None, domain.TICKET_MAX_ATTEMPTS, NOW) == "too_many_attempts"

    def test_only_a_digest_of_the_ticket_is_kept(self):
        digest = domain.secret_digest("ticket-value")
        assert len(digest) == 64 and "ticket-value" not in digest
        assert digest == domain.secret_digest("ticket-value") != domain.secret_digest("ticket-valuf")

    @given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(timezone.utc)),
           st.sampled_from([60, 600, 3600, 86400]))
    def test_tries_are_counted_in_fixed_windows(self, now, window):
        start = domain.window_start(now, window)
        assert start <= now < start + timedelta(seconds=window)
        assert domain.window_start(start + timedelta(seconds=window - 1), window) == start


class TestCallbacks:
    def test_a_callback_is_signed_over_its_exact_body(self):
        body = b'{"idempotency_key": "renewal:1:2"}'
        signature = domain.callback_signature("secret", body)
        assert signature.startswith("sha256=") and len(signature) == 7 + 64
        assert domain.callback_is_signed("secret", body, signature)
        assert not domain.callback_is_signed("secret", body + b" ", signature)
        assert not domain.callback_is_signed("other", body, signature)
        assert not domain.callback_is_signed("secret", body, None)
