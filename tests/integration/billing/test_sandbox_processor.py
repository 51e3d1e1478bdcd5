"""The sandbox adapter on its own, against a real billing database: the processor
interface as billing relies on it."""
from datetime import date, datetime, timezone

import pytest

from services.billing.processors import Card, CardRefused, ProcessorUnavailable, boleto, brcode, make_processor
from services.billing.processors.sandbox import SandboxProcessor
from services.common import clock
from support.databases import every_stored_value


@pytest.fixture
def sandbox(migrated_db_url):
    processor = make_processor({"PAYMENT_PROCESSOR": "sandbox", "BILLING_DB_URL": migrated_db_url("billing")})
    yield processor
    processor.close()


def card(number, security_code="7319"):
    return Card(number=number, exp_month=8, exp_year=2035, security_code=security_code, holder_name="ANA SOUZA")


def test_the_default_processor_is_the_sandbox(migrated_db_url):
    processor = make_processor({"BILLING_DB_URL": migrated_db_url("billing")})
    assert isinstance(processor, SandboxProcessor) and processor.name == "sandbox"
    processor.close()
    with pytest.raises(ValueError, match="acme-pay"):
        make_processor({"PAYMENT_PROCESSOR": "acme-pay", "BILLING_DB_URL": "sqlite://"})


def test_a_card_never_shows_its_digits():
    assert "4242" not in repr(card("4242424242424242")) and "7319" not in repr(card("4242424242424242"))


def test_tokens_remember_the_card_by_brand_and_last_four_only(sandbox, migrated_db_url):
    token = sandbox.tokenize(card("5555555555554444"))
    assert (token.brand, token.last4, token.exp_month, token.exp_year) == ("mastercard", "4444", 8, 2035)
    assert token.token.startswith("tok_sbx_")
    stored = every_stored_value(sandbox.engine.url.render_as_string(hide_password=False))
    assert token.token in stored
    assert not any("5555555555554444" in value or value == "7319" for value in stored)


@pytest.mark.parametrize("number, field", [("4242424242424241", "number"), ("9999999999999995", "number")])
def test_cards_it_cannot_take_are_refused_by_field(sandbox, number, field):
    with pytest.raises(CardRefused) as refused:
        sandbox.tokenize(card(number))
    assert refused.value.field == field


def test_a_key_is_charged_once(sandbox):
    token = sandbox.tokenize(card("4242424242424242")).token
    first = sandbox.charge_card("renewal:s:2", token, 2990, 1)
    again = sandbox.charge_card("renewal:s:2", token, 2990, 1)
    assert first == again and first.status == "paid"
    assert sandbox.find_charge("renewal:s:2") == first
    assert sandbox.find_charge("renewal:s:3") is None


def test_the_network_error_card_is_charged_before_the_answer_is_lost(sandbox):
    token = sandbox.tokenize(card("4000000000000119")).token
    with pytest.raises(ProcessorUnavailable):
        sandbox.charge_card("plan_change:q1", token, 4990, 1)
    assert sandbox.find_charge("plan_change:q1").status == "paid"
    # The same key again is answered, not charged again.
    assert sandbox.charge_card("plan_change:q1", token, 4990, 1).status == "paid"


@pytest.mark.parametrize("number, reason", [("4000000000000002", "card_declined"), ("4000000000009995", "insufficient_funds")])
def test_declines_say_why(sandbox, number, reason):
    charge = sandbox.charge_card("k", sandbox.tokenize(card(number)).token, 100, 1)
    assert (charge.status, charge.decline_reason) == ("refused", reason)


def test_a_card_past_its_expiry_is_declined(sandbox, tmp_path, monkeypatch):
    token = sandbox.tokenize(card("4242424242424242")).token
    clock_file = tmp_path / "clock.json"
    monkeypatch.setenv("CLOCK_FILE", str(clock_file))
    clock.write_clock_file(clock_file, frozen_at=datetime(2035, 8, 31, 23, tzinfo=timezone.utc))
    assert sandbox.charge_card("last-month", token, 100, 1).status == "paid"
    clock.write_clock_file(clock_file, frozen_at=datetime(2035, 9, 1, 3, tzinfo=timezone.utc))
    charge = sandbox.charge_card("after", token, 100, 1)
    assert (charge.status, charge.decline_reason) == ("refused", "expired_card")


def test_a_token_it_did_not_issue_is_charged_as_approved(sandbox):
    assert sandbox.charge_card("k", "tok_demo_ana_visa_4242", 100, 1).status == "paid"


def test_refunds_are_for_paid_charges(sandbox):
    sandbox.create_pix("pending", 100, "acme-cursos", {})
    refused = sandbox.refund("pending", "refund:1", 100)
    assert (refused.status, refused.failure_reason) == ("failed", "not_refundable")
    assert sandbox.refund("unknown", "refund:2", 100).status == "failed"


def test_refunds_are_confirmed_later_and_add_up_to_the_charge_at_most(sandbox):
    sandbox.charge_card("paid", "tok_x", 1000, 1)
    first = sandbox.refund("paid", "refund:a", 400)
    assert (first.status, first.amount_cents) == ("pending", 400) and first.reference.startswith("rf_sbx_")
    # A repeat of the refund's key is the same refund, not another one.
    assert sandbox.refund("paid", "refund:a", 400) == first
    assert sandbox.refund("paid", "refund:b", 600).status == "pending"
    too_much = sandbox.refund("paid", "refund:c", 1)
    assert (too_much.status, too_much.failure_reason) == ("failed", "exceeds_charge")
    assert sandbox.find_charge("paid").status == "paid"
    # The bank's confirmation has come by the time anyone asks again.
    assert sandbox.find_refund("paid", "refund:a").status == "done"
    assert sandbox.find_charge("paid").status == "paid"
    assert sandbox.find_refund("paid", "refund:b").status == "done"
    assert sandbox.find_charge("paid").status == "refunded"
    assert sandbox.find_refund("paid", "refund:z") is None and sandbox.find_refund("other", "refund:a") is None


def test_the_refund_failing_card_is_charged_but_its_refunds_fail(sandbox):
    token = sandbox.tokenize(card("4000000000005126")).token
    assert sandbox.charge_card("k", token, 500, 1).status == "paid"
    assert sandbox.refund("k", "refund:1", 500).status == "pending"
    failed = sandbox.find_refund("k", "refund:1")
    assert (failed.status, failed.failure_reason) == ("failed", "refund_declined")
    assert sandbox.find_charge("k").status == "paid"


def test_a_boletos_refund_is_left_to_the_merchant(sandbox):
    sandbox.create_boleto("b", 700, date(2026, 12, 1), "acme-cursos", {})
    sandbox.pay("b")
    assert sandbox.refund("b", "refund:1", 700).status == "pending_manual"
    assert sandbox.find_refund("b", "refund:1").status == "pending_manual"


def test_boletos_and_pix_codes_are_valid_and_stable_per_key(sandbox):
    first = sandbox.create_boleto("renewal:s:2", 12345, date(2026, 12, 1), "acme-cursos", {"email": "ana@example.com"})
    assert first.status == "pending" and boleto.line_is_valid(first.boleto_line)
    assert first.boleto_line.startswith("999")
    assert sandbox.create_boleto("renewal:s:2", 12345, date(2026, 12, 1), "acme-cursos", {}) == first
    pix = sandbox.create_pix("renewal:s:3", 12345, "acme-cursos", {})
    fields = brcode.parse_pix_code(pix.pix_code)
    assert (fields["54"], fields["59"]) == ("123.45", "ACME-CURSOS")
    assert sandbox.pay("renewal:s:3").status == "paid"
    assert sandbox.pay("renewal:s:3").status == "paid"
