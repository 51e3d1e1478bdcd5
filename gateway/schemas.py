"""Request bodies the gateway accepts, validated before any RPC."""
from marshmallow import INCLUDE, RAISE, Schema, ValidationError, fields, validate, validates_schema

from services.common.schemas import CardOnFileSchema


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


class LoginLinkRequest(StrictSchema):
    email = fields.Email(required=True, validate=validate.Length(max=254))


class SessionCreateRequest(StrictSchema):
    """A link's token (with the login nonce cookie, or with the code), or the code alone
    from the browser that asked for the link."""

    token = fields.String(load_default=None, validate=validate.Length(min=20, max=200))
    code = fields.String(
        load_default=None, validate=validate.Regexp(r"^[0-9]{6}$", error="O código tem 6 dígitos."),
    )

    @validates_schema
    def token_or_code(self, data, **kwargs):
        if not data.get("token") and not data.get("code"):
            raise ValidationError("Envie o token do link ou o código de 6 dígitos.", "token")


class SsoTicketRequest(StrictSchema):
    email = fields.Email(required=True, validate=validate.Length(max=254))
    return_url = fields.Url(
        required=True, schemes={"http", "https"}, require_tld=False, validate=validate.Length(max=2000),
    )


# -- the buyer's self-service operations (the subscriptions service checks them again)

PAYMENT_METHODS = ("credit_card", "boleto", "pix")
CANCEL_REASONS = ("too_expensive", "not_using", "missing_features", "switching_service", "technical_issues", "other")


class PlanChangeQuoteRequest(StrictSchema):
    offer_id = fields.String(required=True, validate=validate.Length(min=1, max=64))


class PlanChangeRequest(StrictSchema):
    quote_id = fields.String(required=True, validate=validate.Length(min=1, max=36))
    installments = fields.Integer(strict=True, load_default=1, validate=validate.Range(min=1, max=12))


class PaymentMethodChangeRequest(StrictSchema):
    method = fields.String(required=True, validate=validate.OneOf(PAYMENT_METHODS))
    # From billing's card form; the card's number never reaches the gateway.
    card_token = fields.String(load_default=None, validate=validate.Length(min=1, max=200))

    @validates_schema
    def token_for_cards_only(self, data, **kwargs):
        if (data["method"] == "credit_card") != bool(data.get("card_token")):
            raise ValidationError("Envie card_token com credit_card, e só com ele.", "card_token")


class CancelRequest(StrictSchema):
    reason = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(CANCEL_REASONS))
    comment = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=500))


class IdempotencyKeyHeader(StrictSchema):
    key = fields.String(
        required=True, data_key="Idempotency-Key",
        validate=validate.Regexp(r"^[\x21-\x7e]{1,255}$", error="1 a 255 caracteres ASCII visíveis."),
    )


# -- the merchant API (the key's merchant is the scope; the owning service checks the rules)

SUBSCRIPTION_STATUSES = ("active", "past_due", "canceled", "expired")
ORDER_STATUSES = ("pending", "pending_confirmation", "paid", "refused", "refunded", "canceled", "expired")
MERCHANT_CANCEL_REASONS = ("buyer", "merchant", "non_payment")
ISO_TIME = {"format": "iso", "required": True}


class AddressRequest(StrictSchema):
    street = fields.String(required=True, validate=validate.Length(min=1, max=200))
    number = fields.String(required=True, validate=validate.Length(min=1, max=20))
    complement = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=100))
    district = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=100))
    city = fields.String(required=True, validate=validate.Length(min=1, max=100))
    state = fields.String(required=True, validate=validate.Regexp(r"^[A-Z]{2}$", error="Use the two-letter UF."))
    postal_code = fields.String(required=True, validate=validate.Regexp(r"^\d{5}-\d{3}$", error="Use 00000-000."))
    country = fields.String(load_default="BR", validate=validate.Regexp(r"^[A-Z]{2}$"))


class CustomerRequest(StrictSchema):
    """The buyer as the checkout knows them; their e-mail is what logs them in."""

    email = fields.Email(required=True, validate=validate.Length(max=254))
    name = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))
    # CPF or CNPJ with valid check digits.
    document = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=18))
    phone = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=30))
    address = fields.Nested(AddressRequest, load_default=None, allow_none=True)


class CardPaymentRequest(StrictSchema, CardOnFileSchema):
    """How the sale was paid: a card only by the processor's token, brand, last four
    and expiry (never its number); boleto and pix by their line or code."""

    method = fields.String(required=True, validate=validate.OneOf(PAYMENT_METHODS))


class OrderPaymentRequest(CardPaymentRequest):
    boleto_line = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=47, max=60))
    boleto_due_date = fields.Date(load_default=None, allow_none=True)
    pix_code = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=512))


class SubscriptionIntakeRequest(StrictSchema):
    """A subscription a checkout sold; a repeat of `external_id` answers the first."""

    external_id = fields.String(required=True, validate=validate.Length(min=1, max=100))
    offer_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    customer = fields.Nested(CustomerRequest, required=True)
    status = fields.String(required=True, validate=validate.OneOf(SUBSCRIPTION_STATUSES))
    cancel_reason = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(MERCHANT_CANCEL_REASONS))
    cycle_number = fields.Integer(strict=True, required=True, validate=validate.Range(min=1))
    cycle_start = fields.AwareDateTime(**ISO_TIME)
    cycle_end = fields.AwareDateTime(**ISO_TIME)
    next_charge_at = fields.AwareDateTime(format="iso", load_default=None, allow_none=True)
    installments = fields.Integer(strict=True, load_default=1, validate=validate.Range(min=1, max=12))
    payment = fields.Nested(CardPaymentRequest, required=True)
    created_at = fields.AwareDateTime(format="iso", load_default=None, allow_none=True)


class OrderIntakeRequest(StrictSchema):
    """An order (venda) a checkout made; a repeat of `external_id` answers the first."""

    external_id = fields.String(required=True, validate=validate.Length(min=1, max=100))
    customer = fields.Nested(CustomerRequest, required=True)
    product_name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    offer_id = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=64))
    # The portal's id of the subscription this order charged (from POST /merchant/subscriptions).
    subscription_id = fields.UUID(load_default=None, allow_none=True)
    cycle_number = fields.Integer(strict=True, load_default=None, allow_none=True, validate=validate.Range(min=1))
    amount_cents = fields.Integer(strict=True, required=True, validate=validate.Range(min=1))
    installments = fields.Integer(strict=True, load_default=1, validate=validate.Range(min=1, max=12))
    status = fields.String(required=True, validate=validate.OneOf(ORDER_STATUSES))
    payment = fields.Nested(OrderPaymentRequest, required=True)
    created_at = fields.AwareDateTime(format="iso", load_default=None, allow_none=True)
    paid_at = fields.AwareDateTime(format="iso", load_default=None, allow_none=True)


class MerchantSettingsRequest(StrictSchema):
    """Replaces every setting; one left out takes its default (off, for self-service)."""

    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    customer_can_change_payment_method = fields.Boolean(load_default=False)
    customer_can_change_plan = fields.Boolean(load_default=False)
    customer_can_cancel = fields.Boolean(load_default=False)
    cancel_mode = fields.String(load_default="at_period_end", validate=validate.OneOf(("immediately", "at_period_end")))
    payment_methods_allowed = fields.List(
        fields.String(validate=validate.OneOf(PAYMENT_METHODS)), load_default=lambda: ["credit_card"],
        validate=validate.Length(max=len(PAYMENT_METHODS)),
    )
    support_email = fields.Email(load_default=None, allow_none=True)
    support_phone = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=30))
    support_url = fields.Url(load_default=None, allow_none=True, schemes={"http", "https"})
    allowed_origins = fields.List(fields.String(validate=validate.Length(max=300)), load_default=list)
    brand_name = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))
    accent_color = fields.String(
        load_default=None, allow_none=True, validate=validate.Regexp(r"^#[0-9A-Fa-f]{6}$", error="Use #RRGGBB."),
    )


class PlanChangeOptionsRequest(StrictSchema):
    plan_change_options = fields.List(
        fields.String(validate=validate.Length(min=1, max=64)), required=True, validate=validate.Length(max=50),
    )


# -- the merchant's catalog and delivery log (gateway/merchant_catalog_api.py)

OFFER_STATUSES = ("active", "archived")
MAX_PRICE_CENTS = 2**31 - 1
DELIVERY_STATUSES = ("pending", "delivering", "delivered", "failed")


class OfferUpdateRequest(StrictSchema):
    """Only the terms sent change; an offer with subscriptions keeps its price and periodicity."""

    product_name = fields.String(validate=validate.Length(min=1, max=200))
    plan_name = fields.String(validate=validate.Length(min=1, max=200))
    # The subscriptions service stores it as a 32-bit integer.
    price_cents = fields.Integer(strict=True, validate=validate.Range(min=1, max=MAX_PRICE_CENTS))
    periodicity_months = fields.Integer(strict=True, validate=validate.OneOf((1, 2, 3, 6, 12)))
    max_installments = fields.Integer(strict=True, validate=validate.Range(min=1, max=12))
    # Among the merchant's allowed methods (settings); each once.
    payment_methods_accepted = fields.List(
        fields.String(validate=validate.OneOf(PAYMENT_METHODS)), validate=validate.Length(min=1, max=len(PAYMENT_METHODS)),
    )
    status = fields.String(validate=validate.OneOf(OFFER_STATUSES))


class OfferCreateRequest(OfferUpdateRequest):
    """A new offer; left out: one installment, every method the merchant allows, active."""

    id = fields.String(required=True, validate=validate.Regexp(
        r"^[a-z0-9]+(?:-[a-z0-9]+)*$", error="Use lower-case letters, digits and dashes."))
    product_name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    plan_name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    price_cents = fields.Integer(strict=True, required=True, validate=validate.Range(min=1, max=MAX_PRICE_CENTS))
    periodicity_months = fields.Integer(strict=True, required=True, validate=validate.OneOf((1, 2, 3, 6, 12)))


class PageQuery(StrictSchema):
    """A page of a list: up to `limit` after `cursor` (the `next_cursor` of the page before)."""

    cursor = fields.String(validate=validate.Length(min=1, max=64))
    limit = fields.Integer(validate=validate.Range(min=1, max=100))


class OffersQuery(PageQuery):
    status = fields.String(validate=validate.OneOf(OFFER_STATUSES))


class DeliveriesQuery(PageQuery):
    status = fields.String(validate=validate.OneOf(DELIVERY_STATUSES))
    event_type = fields.String(validate=validate.Length(min=1, max=100))


class WebhookEndpointRequest(StrictSchema):
    url = fields.Url(required=True, require_tld=False, schemes={"http", "https"}, validate=validate.Length(max=2000))
    # Empty or left out: every event.
    event_types = fields.List(fields.String(validate=validate.Length(min=1, max=100)), load_default=list)


# The most one refund may give back: far above any order, below any database's integer.
MAX_REFUND_CENTS = 1_000_000_000


class RefundRequest(StrictSchema):
    """A refund of a merchant's order: `amount_cents` none, all that is left to refund."""

    amount_cents = fields.Integer(strict=True, load_default=None, allow_none=True,
                                  validate=validate.Range(min=1, max=MAX_REFUND_CENTS))
    reason = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=500))


class WebhookSettingsRequest(StrictSchema):
    endpoints = fields.List(fields.Nested(WebhookEndpointRequest), required=True, validate=validate.Length(max=10))
    rotate_secret = fields.Boolean(load_default=False)


# -- answers, as the OpenAPI document describes them (gateway/openapi.py)

class Answer(Schema):
    """What a route answers; keys it may add later do not break the document."""

    class Meta:
        unknown = INCLUDE


class ErrorBody(Answer):
    code = fields.String(required=True)
    message = fields.String(required=True)
    # Field name → what is wrong with it (400), or what the refusal concerns.
    fields = fields.Dict(required=True)


class ErrorAnswer(Answer):
    error = fields.Nested(ErrorBody, required=True)


class LoginLinkAnswer(Answer):
    message = fields.String(required=True)


class SessionAnswer(Answer):
    session = fields.Dict(required=True)
    session_token = fields.String(required=True)
    csrf_token = fields.String(required=True)


class SessionsAnswer(Answer):
    sessions = fields.List(fields.Dict(), required=True)


class OrdersAnswer(Answer):
    orders = fields.List(fields.Dict(), required=True)


class OrderAnswer(Answer):
    order = fields.Dict(required=True)


REFUND_STATUSES = ("pending", "pending_manual", "done", "failed")


class RefundView(Answer):
    """A refund: pending until the processor confirms it (done) or refuses it (failed);
    pending_manual when the processor cannot return the money by itself (a boleto, an
    order not charged through the portal) and the merchant does."""

    id = fields.String(required=True)
    order_code = fields.String(required=True)
    amount_cents = fields.Integer(required=True)
    reason = fields.String(required=True, allow_none=True)
    actor = fields.String(required=True, validate=validate.OneOf(("merchant", "system", "operator")))
    status = fields.String(required=True, validate=validate.OneOf(REFUND_STATUSES))
    failure_reason = fields.String(required=True, allow_none=True)
    created_at = fields.AwareDateTime(required=True)
    settled_at = fields.AwareDateTime(required=True, allow_none=True)


class RefundAnswer(Answer):
    refund = fields.Nested(RefundView, required=True)


class RefundsAnswer(Answer):
    refunds = fields.List(fields.Nested(RefundView), required=True)


class SubscriptionsAnswer(Answer):
    subscriptions = fields.List(fields.Dict(), required=True)


class SubscriptionAnswer(Answer):
    subscription = fields.Dict(required=True)


class PlanOptionsAnswer(Answer):
    subscription_id = fields.String(required=True)
    current = fields.Dict(required=True)
    options = fields.List(fields.Dict(), required=True)
    pending_change = fields.Dict(required=True, allow_none=True)


class QuoteAnswer(Answer):
    quote = fields.Dict(required=True)


class ChangedAnswer(Answer):
    """The subscription as it is now, and the order of the charge the change made."""

    subscription = fields.Dict(required=True)
    order = fields.Dict(required=True, allow_none=True)


class CardEntryAnswer(Answer):
    form_url = fields.String(required=True)
    expires_at = fields.String(required=True)


class ActivityAnswer(Answer):
    activity = fields.List(fields.Dict(), required=True)


class SsoTicketAnswer(Answer):
    url = fields.String(required=True)
    expires_at = fields.String(required=True)


class SettingsAnswer(Answer):
    settings = fields.Dict(required=True)


class OfferView(Answer):
    id = fields.String(required=True)
    product_name = fields.String(required=True)
    plan_name = fields.String(required=True)
    price_cents = fields.Integer(required=True)
    periodicity_months = fields.Integer(required=True)
    max_installments = fields.Integer(required=True)
    plan_change_options = fields.List(fields.String(), required=True)
    payment_methods_accepted = fields.List(fields.String(validate=validate.OneOf(PAYMENT_METHODS)), required=True)
    status = fields.String(required=True, validate=validate.OneOf(OFFER_STATUSES))


class OffersAnswer(Answer):
    offers = fields.List(fields.Nested(OfferView), required=True)
    # The `cursor` of the next page; null on the last.
    next_cursor = fields.String(required=True, allow_none=True)


class OfferAnswer(Answer):
    offer = fields.Nested(OfferView, required=True)


class DeliveryAttemptView(Answer):
    at = fields.String(required=True)
    status_code = fields.Integer(required=True, allow_none=True)
    error = fields.String(required=True, allow_none=True)


class DeliveryView(Answer):
    id = fields.String(required=True)
    endpoint_id = fields.String(required=True)
    url = fields.String(required=True)
    event_id = fields.String(required=True)
    event_type = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(DELIVERY_STATUSES))
    attempts = fields.Integer(required=True)
    last_status_code = fields.Integer(required=True, allow_none=True)
    last_error = fields.String(required=True, allow_none=True)
    created_at = fields.String(required=True)
    delivered_at = fields.String(required=True, allow_none=True)
    next_attempt_at = fields.String(required=True, allow_none=True)
    # Every POST, oldest first: what the merchant's server answered, or why none was made.
    log = fields.List(fields.Nested(DeliveryAttemptView), required=True)


class DeliveriesAnswer(Answer):
    deliveries = fields.List(fields.Nested(DeliveryView), required=True)
    next_cursor = fields.String(required=True, allow_none=True)


class DeliveryAnswer(Answer):
    delivery = fields.Nested(DeliveryView, required=True)


class WebhookSettingsAnswer(Answer):
    merchant_id = fields.String(required=True)
    secret = fields.String(required=True, allow_none=True)
    endpoints = fields.List(fields.Dict(), required=True)
    event_types = fields.List(fields.String(), required=True)


# -- the merchant's support API (gateway/merchant_support_api.py)

class CustomersQuery(PageQuery):
    """A buyer looked up by e-mail or CPF/CNPJ (subscriptions normalizes and checks them)."""

    email = fields.String(validate=validate.Length(min=1, max=254))
    document = fields.String(validate=validate.Length(min=1, max=30))

    @validates_schema
    def check_one_key(self, data, **kwargs):
        if ("email" in data) == ("document" in data):
            raise ValidationError("Send either email or document.", "email")


class AddressView(Answer):
    street = fields.String(required=True)
    number = fields.String(required=True)
    complement = fields.String(required=True, allow_none=True)
    district = fields.String(required=True, allow_none=True)
    city = fields.String(required=True)
    state = fields.String(required=True)
    postal_code = fields.String(required=True)
    country = fields.String(required=True, allow_none=True)


class CustomerView(Answer):
    """A buyer as the merchant's checkouts described them."""

    id = fields.Integer(required=True)
    merchant_id = fields.String(required=True)
    email = fields.String(required=True)
    name = fields.String(required=True, allow_none=True)
    document = fields.String(required=True, allow_none=True)
    phone = fields.String(required=True, allow_none=True)
    address = fields.Nested(AddressView, required=True, allow_none=True)


class CustomersAnswer(Answer):
    customers = fields.List(fields.Nested(CustomerView), required=True)
    next_cursor = fields.String(required=True, allow_none=True)


class CustomerOrdersAnswer(Answer):
    orders = fields.List(fields.Dict(), required=True)
    next_cursor = fields.String(required=True, allow_none=True)


class CustomerSubscriptionsAnswer(Answer):
    subscriptions = fields.List(fields.Dict(), required=True)
    next_cursor = fields.String(required=True, allow_none=True)


class ActivityEntryView(Answer):
    at = fields.String(required=True)
    actor = fields.String(required=True, validate=validate.OneOf(("buyer", "merchant", "system")))
    action = fields.String(required=True)
    details = fields.Dict(required=True)


class ActivityPageAnswer(Answer):
    activity = fields.List(fields.Nested(ActivityEntryView), required=True)
    next_cursor = fields.String(required=True, allow_none=True)


class MerchantCancelRequest(CancelRequest):
    """The merchant cancels for its buyer: at the period's end (undoable until then) or now."""

    at_period_end = fields.Boolean(required=True)


class AcceptedAnswer(Answer):
    accepted = fields.Boolean(required=True)
