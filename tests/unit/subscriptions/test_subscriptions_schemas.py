"""What the subscriptions RPCs accept, and the dicts they answer with."""
from datetime import datetime, timezone

import pytest

from services.common.errors import ValidationFailed
from services.common.validation import load
from services.subscriptions.models import Merchant, Offer, Subscription
from services.subscriptions.schemas import (
    ContactSchema, MerchantSchema, OfferSchema, SubscriptionDetailSchema, SubscriptionInputSchema,
    SubscriptionSchema,
)

CARD = {"method": "credit_card", "card_brand": "visa", "card_last4": "4242", "card_exp": "08/2030", "token": "tok_1"}


def subscription_input(**changes):
    return {
        "merchant_id": "acme-cursos", "external_id": "sub-1", "offer_id": "basico",
        "email": "Ana@Example.com", "status": "active", "cycle_number": 1,
        "cycle_start": "2026-11-01T12:00:00+00:00", "cycle_end": "2026-12-01T12:00:00+00:00",
        "payment": CARD, **changes,
    }


def failed_fields(schema, data):
    with pytest.raises(ValidationFailed) as failure:
        load(schema, data)
    return failure.value.fields


def test_a_merchant_has_every_self_service_option_off_by_default():
    merchant = load(MerchantSchema(), {"id": "acme-cursos", "name": "Acme Cursos"})
    assert merchant["customer_can_change_payment_method"] is False
    assert merchant["customer_can_change_plan"] is False
    assert merchant["customer_can_cancel"] is False
    assert merchant["allowed_origins"] == []


def test_bad_merchant_fields_are_named():
    fields = failed_fields(MerchantSchema(), {
        "id": "Acme Cursos", "name": "", "cancel_mode": "tomorrow", "accent_color": "red",
        "payment_methods_allowed": ["pix", "pix"], "allowed_origins": ["https://acme.example.com/"],
    })
    assert set(fields) == {"id", "name", "cancel_mode", "accent_color"}
    fields = failed_fields(MerchantSchema(), {
        "id": "acme", "name": "Acme", "payment_methods_allowed": ["pix", "pix"],
    })
    assert set(fields) == {"payment_methods_allowed"}


def test_offer_prices_are_positive_integer_cents_and_periodicities_are_known():
    offer = {"merchant_id": "acme-cursos", "id": "basico", "product_name": "Curso", "plan_name": "Básico"}
    fields = failed_fields(OfferSchema(), {**offer, "price_cents": 0, "periodicity_months": 4})
    assert set(fields) == {"price_cents", "periodicity_months"}
    assert set(failed_fields(OfferSchema(), {**offer, "price_cents": 29.9, "periodicity_months": 1})) == {"price_cents"}
    assert set(failed_fields(OfferSchema(), {**offer, "price_cents": 2990, "periodicity_months": 1, "max_installments": 0})) == {"max_installments"}


def test_an_offer_without_options_leaves_them_as_they_are():
    offer = load(OfferSchema(), {
        "merchant_id": "acme-cursos", "id": "basico", "product_name": "Curso", "plan_name": "Básico",
        "price_cents": 2990, "periodicity_months": 1,
    })
    assert "plan_change_options" not in offer
    assert offer["max_installments"] == 1


def test_a_contact_is_kept_with_a_lower_case_email_and_a_punctuated_document():
    contact = load(ContactSchema(), {"merchant_id": "acme-cursos", "email": "Ana@Example.COM", "document": "12345678909"})
    assert (contact["email"], contact["document"]) == ("ana@example.com", "123.456.789-09")
    assert set(failed_fields(ContactSchema(), {"merchant_id": "acme-cursos", "email": "x", "document": "123"})) == {"email", "document"}
    fields = failed_fields(ContactSchema(), {
        "merchant_id": "acme-cursos", "email": "a@b.com",
        "address": {"street": "Rua", "number": "1", "city": "SP", "state": "sp", "postal_code": "01310100"},
    })
    assert set(fields["address"]) == {"state", "postal_code"}


def test_a_subscription_input_is_loaded_with_utc_times_and_defaults():
    data = load(SubscriptionInputSchema(), subscription_input(cycle_start="2026-11-01T09:00:00-03:00"))
    assert data["email"] == "ana@example.com"
    assert data["cycle_start"] == datetime(2026, 11, 1, 12, tzinfo=timezone.utc)
    assert data["cycle_start"].utcoffset().total_seconds() == 0
    assert (data["installments"], data["next_charge_at"], data["created_at"]) == (1, None, None)


def test_a_card_number_is_never_accepted():
    fields = failed_fields(SubscriptionInputSchema(), subscription_input(payment={**CARD, "card_number": "4242424242424242"}))
    assert fields == {"payment": {"card_number": ["Unknown field."]}}


def test_naive_times_and_incomplete_cards_are_refused():
    fields = failed_fields(SubscriptionInputSchema(), subscription_input(
        cycle_start="2026-11-01T12:00:00", payment={"method": "credit_card", "card_brand": "visa"},
    ))
    assert set(fields) == {"cycle_start", "payment"}
    assert set(fields["payment"]) == {"card_last4", "card_exp", "token"}


def sample_subscription():
    merchant = Merchant(
        id="acme-cursos", name="Acme Cursos", brand_name="Acme", customer_can_change_payment_method=True,
        customer_can_change_plan=False, customer_can_cancel=True, cancel_mode="at_period_end",
        payment_methods_allowed=["credit_card", "pix"], support_email="suporte@acme.example.com",
        support_phone="+55 11 4004-1234", support_url="https://acme.example.com/ajuda",
    )
    offer = Offer(
        merchant_id="acme-cursos", id="basico", product_name="Curso Completo", plan_name="Básico mensal",
        price_cents=2990, periodicity_months=1, max_installments=1,
    )
    start = datetime(2026, 11, 1, 12, tzinfo=timezone.utc)
    return Subscription(
        id="5a0f0d0e-0000-4000-8000-000000000001", merchant_id="acme-cursos", external_id="sub-1",
        offer_id="basico", email="ana@example.com", status="active", cancel_reason=None,
        cancel_at_period_end=False, cycle_number=1, cycle_start=start,
        cycle_end=datetime(2026, 12, 1, 12, tzinfo=timezone.utc),
        next_charge_at=datetime(2026, 12, 1, 12, tzinfo=timezone.utc), payment_method="credit_card",
        card_brand="visa", card_last4="4242", card_exp="08/2030", payment_token="tok_secret",
        installments=1, balance_cents=0, created_at=start, merchant=merchant, offer=offer,
    )


def test_the_subscription_view():
    view = SubscriptionSchema().dump(sample_subscription())
    assert view == {
        "id": "5a0f0d0e-0000-4000-8000-000000000001",
        "merchant": {"id": "acme-cursos", "name": "Acme Cursos", "brand_name": "Acme", "support": {
            "email": "suporte@acme.example.com", "phone": "+55 11 4004-1234", "url": "https://acme.example.com/ajuda",
        }},
        "offer_id": "basico",
        "product_name": "Curso Completo",
        "plan_name": "Básico mensal",
        "price_cents": 2990,
        "periodicity_months": 1,
        "status": "active",
        "cancel_reason": None,
        "cancel_at_period_end": False,
        "cycle": {"number": 1, "start": "2026-11-01T12:00:00+00:00", "end": "2026-12-01T12:00:00+00:00"},
        "next_charge_at": "2026-12-01T12:00:00+00:00",
        "payment_method": {"method": "credit_card", "card_brand": "visa", "card_last4": "4242", "card_exp": "08/2030"},
        "installments": 1,
        "balance_cents": 0,
        "pending_plan_change": None,
        "cancel_feedback": None,
        "cancel_comment": None,
        "canceled_at": None,
        "created_at": "2026-11-01T12:00:00+00:00",
    }


def test_the_detail_view_adds_what_the_buyer_may_do_now_and_never_the_token():
    view = SubscriptionDetailSchema(datetime(2026, 11, 10, tzinfo=timezone.utc)).dump(sample_subscription())
    assert view["self_service"] == {
        "change_payment_method": True, "change_plan": False, "cancel": True,
        "cancel_mode": "at_period_end", "payment_methods_allowed": ["credit_card", "pix"],
    }
    assert view["allowed_operations"] == ["change_payment_method", "cancel"]
    assert view["cancel_takes_effect"] == "at_period_end"
    assert view["next_charge"] == {"at": "2026-12-01T12:00:00+00:00", "amount_cents": 2990}
    assert "tok_secret" not in repr(view)
