"""Rules of notifying, as plain functions."""
import smtplib
from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from services.notifications import domain

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=timezone.utc)


def test_login_email_is_too_late_from_the_moment_its_link_expires():
    assert not domain.login_email_expired(NOW + timedelta(microseconds=1), NOW)
    assert domain.login_email_expired(NOW, NOW)
    assert domain.login_email_expired(NOW - timedelta(seconds=1), NOW)


def test_a_fresh_ten_minute_link_says_ten_minutes():
    assert domain.minutes_left(NOW + timedelta(seconds=600), NOW) == 10
    # auth stamped the expiry a moment before notifications looks at it
    assert domain.minutes_left(NOW + timedelta(seconds=599, milliseconds=950), NOW) == 10
    assert domain.minutes_left(NOW + timedelta(seconds=61), NOW) == 2
    assert domain.minutes_left(NOW + timedelta(seconds=1), NOW) == 1


@given(st.floats(min_value=0.001, max_value=7 * 86400))
def test_minutes_left_never_understates_by_a_minute(seconds):
    minutes = domain.minutes_left(NOW + timedelta(seconds=seconds), NOW)
    assert minutes >= 1
    assert (minutes - 1) * 60 < seconds <= minutes * 60 + 0.001


def test_error_text_hides_the_secrets_it_was_given():
    link = "https://portal.example.com/entrar?token=abcDEF123"
    error = OSError(f"550 rejected: message quoted {link} and 123456")

    text = domain.error_text(error, (link, "123456"))

    assert link not in text
    assert "123456" not in text
    assert text == "550 rejected: message quoted [redacted] and [redacted]"


def test_error_text_is_short_and_never_empty():
    assert len(domain.error_text(OSError("x" * 5000), ())) == domain.MAX_ERROR_LENGTH
    assert domain.error_text(TimeoutError(), ()) == "TimeoutError"


# -- retries

POLICY = {"base_seconds": 30, "max_seconds": 3600}


def test_backoff_doubles_from_the_base_up_to_the_cap():
    delays = [domain.retry_delay(attempts, **POLICY).total_seconds() for attempts in range(1, 10)]
    assert delays == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]


@given(st.integers(min_value=1, max_value=10_000), st.floats(min_value=0, max_value=200_000))
def test_next_attempt_never_passes_the_window_and_none_once_it_is_over(attempts, elapsed):
    window_end = NOW + timedelta(hours=24)
    now = NOW + timedelta(seconds=elapsed)

    retry_at = domain.next_attempt_at(now, attempts, window_end, **POLICY)

    if now >= window_end:
        assert retry_at is None
    else:
        assert now < retry_at <= window_end
        assert retry_at - now <= timedelta(seconds=3600)


def test_the_last_try_falls_on_the_end_of_the_window():
    window_end = NOW + timedelta(seconds=50)
    assert domain.next_attempt_at(NOW + timedelta(seconds=40), 3, window_end, **POLICY) == window_end
    assert domain.next_attempt_at(window_end, 4, window_end, **POLICY) is None


def test_smtp_5xx_is_permanent_while_4xx_refusals_and_timeouts_are_not():
    assert domain.smtp_failure_is_permanent(smtplib.SMTPDataError(554, b"rejected"))
    assert domain.smtp_failure_is_permanent(smtplib.SMTPSenderRefused(553, b"no", "portal@example.com"))
    assert domain.smtp_failure_is_permanent(smtplib.SMTPRecipientsRefused({"a@b.com": (550, b"no such user")}))
    assert not domain.smtp_failure_is_permanent(smtplib.SMTPRecipientsRefused({"a@b.com": (450, b"busy")}))
    assert not domain.smtp_failure_is_permanent(smtplib.SMTPDataError(451, b"try later"))
    assert not domain.smtp_failure_is_permanent(smtplib.SMTPServerDisconnected("gone"))
    assert not domain.smtp_failure_is_permanent(ConnectionRefusedError(111, "Connection refused"))
    assert not domain.smtp_failure_is_permanent(TimeoutError("timed out"))


# -- which e-mails, in which language

def test_each_subscription_event_calls_for_its_e_mail():
    assert domain.email_kinds("subscription_plan_changed", {}) == ["plan_changed"]
    assert domain.email_kinds("subscription_past_due", {}) == ["past_due"]
    assert domain.email_kinds("subscription_created", {}) == []
    assert domain.email_kinds("subscription_cancellation_undone", {}) == []


def test_a_pending_boleto_or_pix_order_calls_for_how_to_pay_it():
    assert domain.email_kinds("order_created", {"status": "pending", "method": "boleto"}) == ["boleto_issued"]
    assert domain.email_kinds("order_created", {"status": "pending", "method": "pix"}) == ["pix_issued"]
    assert domain.email_kinds("order_created", {"status": "paid", "method": "pix"}) == []
    assert domain.email_kinds("order_created", {"status": "pending_confirmation", "method": "credit_card"}) == []


def test_a_charge_s_boleto_or_pix_is_sent_once_the_processor_issued_it():
    # A renewal's (or a plan change's) order is created before the processor answers...
    assert domain.email_kinds("order_created", {"status": "pending_confirmation", "method": "boleto"}) == []
    # ...and becomes payable with the answer: that is when its buyer gets it.
    assert domain.email_kinds("order_awaiting_payment", {"status": "pending", "method": "boleto"}) == ["boleto_issued"]
    assert domain.email_kinds("order_awaiting_payment", {"status": "pending", "method": "pix"}) == ["pix_issued"]


def test_a_paid_order_has_its_receipt_unless_its_subscription_event_already_says_so():
    assert domain.email_kinds("order_paid", {"kind": None}) == ["order_paid"]
    assert domain.email_kinds("order_paid", {"kind": "renewal"}) == []
    assert domain.email_kinds("order_paid", {"kind": "retry"}) == []
    assert domain.email_kinds("order_paid", {"kind": "plan_change"}) == []


def test_a_failed_renewal_charge_is_told_once_by_its_subscription_event():
    assert domain.email_kinds("charge_failed", {"kind": "renewal"}) == []
    assert domain.email_kinds("charge_failed", {"kind": "retry"}) == []
    assert domain.email_kinds("subscription_past_due", {"decline_reason": "card_declined"}) == ["past_due"]
    assert domain.email_kinds("charge_failed", {"kind": "plan_change"}) == ["charge_failed"]
    assert domain.email_kinds("charge_failed", {"kind": None}) == ["charge_failed"]


def test_english_only_when_the_buyer_data_says_so():
    assert domain.email_locale({"locale": "en"}) == "en"
    assert domain.email_locale(None, {"locale": "en-US"}) == "en"
    assert domain.email_locale({"locale": "pt-BR"}, {}) == "pt_BR"
    assert domain.email_locale({}, None) == "pt_BR"


def test_the_payment_link_goes_to_the_portal_page_of_that_subscription():
    assert (domain.payment_method_url("https://portal.example.com/", "sub-1")
            == "https://portal.example.com/assinaturas/sub-1/forma-de-pagamento")


def test_facts_prefer_what_the_event_says_and_fill_in_from_the_owning_services():
    event = {
        "event_id": "e-1", "type": "subscription_renewed", "merchant_id": "acme",
        "occurred_at": "2026-05-04T12:00:00+00:00",
        "data": {"subscription_id": "sub-1", "email": "ana@example.com", "amount_cents": 4990,
                 "order_code": "PED-AAAAAAAA", "cycle_start": "2026-05-04T12:00:00+00:00"},
    }
    subscription = {"product_name": "Curso", "plan_name": "Premium", "cycle": {"start": "x", "end": "2026-06-04T12:00:00+00:00"}}
    merchant = {"name": "Acme Ltda", "brand_name": "Acme", "support_email": "ajuda@acme.com"}

    facts = domain.email_facts(event, subscription, None, merchant, "https://portal.example.com")

    assert facts["amount_cents"] == 4990
    assert facts["cycle_start"] == "2026-05-04T12:00:00+00:00"
    assert facts["cycle_end"] == "2026-06-04T12:00:00+00:00"
    assert facts["merchant"]["name"] == "Acme"
    assert facts["order_url"] == "https://portal.example.com/pedidos/PED-AAAAAAAA"
    assert facts["payment_method_url"] == "https://portal.example.com/assinaturas/sub-1/forma-de-pagamento"


def test_without_a_merchant_answer_the_merchant_is_the_one_the_subscription_names():
    event = {"event_id": "e-1", "type": "subscription_canceled", "merchant_id": "acme", "data": {"subscription_id": "sub-1"}}
    subscription = {"merchant": {"id": "acme", "name": "Acme Ltda", "brand_name": "Acme", "support": {
        "email": "ajuda@acme.com", "phone": "+55 11 4000-1234", "url": None}}}

    facts = domain.email_facts(event, subscription, None, None, "https://portal.example.com")

    assert facts["merchant"] == {"name": "Acme", "support_email": "ajuda@acme.com",
                                 "support_phone": "+55 11 4000-1234", "support_url": None}


# -- webhooks

def test_signature_is_hmac_sha256_of_timestamp_dot_body_in_hex():
    assert domain.signature("whsec_test", 1767225600, b'{"event_id":"e-1"}') == (
        "t=1767225600,v1=3c901be804c64d8f40431a74f224261cd7b31d7ba1914cad1aa85457310f6ac9"
    )


def test_an_endpoint_with_no_event_types_takes_them_all():
    assert domain.endpoint_wants([], "order_paid")
    assert domain.endpoint_wants(["order_paid"], "order_paid")
    assert not domain.endpoint_wants(["subscription_canceled"], "order_paid")

