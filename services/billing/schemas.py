"""RPC payloads and event data of the billing service.

Input schemas refuse unknown keys, so a card number or CVV sent by mistake is
refused, never stored; views are dumped from rows.
"""
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from services.billing import domain
from services.billing.processors import ADAPTERS, ENVIRONMENTS
from services.common.schemas import CARD_BRANDS, CardOnFileSchema, LowerEmail, UtcIsoDateTime, optional_string, slug

MAX_INSTALLMENTS = 12


class BoletoLine(fields.String):
    """A linha digitável, kept as its 47 digits."""

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            return domain.normalize_boleto_line(super()._deserialize(value, attr, data, **kwargs))
        except ValueError as error:
            raise ValidationError(str(error)) from None


class BuyerSchema(Schema):
    email = LowerEmail(required=True)
    name = optional_string(200)
    # A snapshot of what the checkout collected (CPF or CNPJ); subscriptions' contacts
    # are where documents are checked.
    document = optional_string(18)
    phone = optional_string(30)


class AddressSchema(Schema):
    street = fields.String(required=True, validate=validate.Length(min=1, max=200))
    number = fields.String(required=True, validate=validate.Length(min=1, max=20))
    complement = optional_string(100)
    district = optional_string(100)
    city = fields.String(required=True, validate=validate.Length(min=1, max=100))
    state = fields.String(required=True, validate=validate.Regexp(r"^[A-Z]{2}$", error="Use the two-letter UF."))
    postal_code = fields.String(required=True, validate=validate.Regexp(r"^\d{5}-\d{3}$", error="Use 00000-000."))
    country = fields.String(load_default="BR", validate=validate.Regexp(r"^[A-Z]{2}$"))


class PaymentInputSchema(CardOnFileSchema):
    # The card's token is kept among the buyer's payment methods.
    method = fields.String(required=True, validate=validate.OneOf(domain.PAYMENT_METHODS))
    boleto_line = BoletoLine(load_default=None, allow_none=True)
    boleto_due_date = fields.Date(load_default=None, allow_none=True)
    pix_code = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=512))


class OrderInputSchema(Schema):
    """What a checkout's intake registers."""

    merchant_id = fields.String(required=True, validate=slug)
    external_id = fields.String(required=True, validate=validate.Length(min=1, max=100))
    buyer = fields.Nested(BuyerSchema, required=True)
    address = fields.Nested(AddressSchema, load_default=None, allow_none=True)
    product_name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    offer_id = fields.String(load_default=None, allow_none=True, validate=slug)
    subscription_id = fields.UUID(load_default=None, allow_none=True)
    cycle_number = fields.Integer(strict=True, load_default=None, allow_none=True, validate=validate.Range(min=1))
    amount_cents = fields.Integer(strict=True, required=True, validate=validate.Range(min=1))
    installments = fields.Integer(strict=True, load_default=1, validate=validate.Range(min=1, max=MAX_INSTALLMENTS))
    status = fields.String(required=True, validate=validate.OneOf(domain.ORDER_STATUSES))
    payment = fields.Nested(PaymentInputSchema, required=True)
    # When the checkout sold it; left out: now.
    created_at = UtcIsoDateTime(load_default=None, allow_none=True)
    # For a paid (or refunded) order; left out: created_at.
    paid_at = UtcIsoDateTime(load_default=None, allow_none=True)

    @validates_schema
    def check_rules(self, data, **kwargs):
        problems = domain.order_problems(data)
        if problems:
            raise ValidationError(problems)


class CardPaymentSchema(CardOnFileSchema):
    method = fields.String(required=True, validate=validate.Equal("credit_card"))

    @validates_schema
    def check_rules(self, data, **kwargs):
        missing = {field: ["Required for credit_card."] for field in ("token", *domain.METHOD_FIELDS["credit_card"])
                   if not data.get(field)}
        if missing:
            raise ValidationError(missing)


class CardRegistrationSchema(Schema):
    """A card a checkout's subscription names, kept on file so its renewals can charge
    it even before the checkout sends the subscription's first order."""

    merchant_id = fields.String(required=True, validate=slug)
    email = LowerEmail(required=True)
    payment = fields.Nested(CardPaymentSchema, required=True)


class ChargeRequestSchema(Schema):
    """What subscriptions asks billing to charge; idempotent by `idempotency_key`."""

    idempotency_key = fields.String(required=True, validate=validate.Length(min=1, max=200))
    merchant_id = fields.String(required=True, validate=slug)
    email = LowerEmail(required=True)
    subscription_id = fields.UUID(required=True)
    cycle_number = fields.Integer(strict=True, load_default=None, allow_none=True, validate=validate.Range(min=1))
    kind = fields.String(required=True, validate=validate.OneOf(domain.CHARGE_KINDS))
    product_name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    amount_cents = fields.Integer(strict=True, required=True, validate=validate.Range(min=0))
    installments = fields.Integer(strict=True, load_default=1, validate=validate.Range(min=1, max=MAX_INSTALLMENTS))
    method = fields.String(required=True, validate=validate.OneOf(domain.PAYMENT_METHODS))
    payment_token = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=200))
    due_at = UtcIsoDateTime(load_default=None, allow_none=True)

    @validates_schema
    def check_rules(self, data, **kwargs):
        problems = domain.charge_problems(data)
        if problems:
            raise ValidationError(problems)


class RefundRequestSchema(Schema):
    """A request to give back (part of) an order's payment; `amount_cents` none: all
    that is left. `request_key`: the requester's key, one refund however often it asks."""

    merchant_id = fields.String(required=True, validate=slug)
    code = fields.String(required=True, validate=validate.Regexp(domain.ORDER_CODE, error="Not an order code."))
    request_key = fields.String(required=True, validate=validate.Length(min=1, max=255))
    amount_cents = fields.Integer(strict=True, load_default=None, allow_none=True, validate=validate.Range(min=1))
    reason = optional_string(500)
    actor = fields.String(required=True, validate=validate.OneOf(domain.REFUND_ACTORS))


class PaymentNotAppliedEventSchema(Schema):
    """What billing reads of subscriptions' `subscription_payment_not_applied`: whose
    order to give back (later additions to the event are ignored)."""

    class Meta:
        unknown = EXCLUDE

    class Data(Schema):
        class Meta:
            unknown = EXCLUDE

        order_code = fields.String(required=True, validate=validate.Regexp(domain.ORDER_CODE))

    merchant_id = fields.String(required=True, validate=slug)
    data = fields.Nested(Data, required=True)


class CardHolderPrefillSchema(Schema):
    """What the merchant knows of the buyer, to prefill the card form's holder fields
    (checked as any typed value when the form comes back)."""

    name = fields.String(load_default=None, validate=validate.Length(max=200))
    document = fields.String(load_default=None, validate=validate.Length(max=18))
    phone = fields.String(load_default=None, validate=validate.Length(max=30))
    postal_code = fields.String(load_default=None, validate=validate.Length(max=9))
    address_number = fields.String(load_default=None, validate=validate.Length(max=20))


class CardEntryTicketRequestSchema(Schema):
    email = LowerEmail(required=True)
    merchant_id = fields.String(required=True, validate=slug)
    subscription_id = fields.UUID(required=True)
    holder = fields.Nested(CardHolderPrefillSchema, load_default=None, allow_none=True)


class ProcessorCallbackSchema(Schema):
    """A processor's signed note that a charge changed; billing then asks it which way."""

    idempotency_key = fields.String(required=True, validate=validate.Length(min=1, max=200))


# One e-mail goes to every owner at once: its To header lists them all (254 characters).
MAX_OWNER_EMAILS = 5
MAX_OWNERS_LENGTH = 254


class CustomerOrdersPageSchema(Schema):
    """A page of a merchant's orders of one buyer, newest first: up to `limit` after the
    order coded `cursor` (the `next_cursor` of the page before)."""

    merchant_id = fields.String(required=True, validate=slug)
    email = LowerEmail(required=True)
    cursor = fields.String(load_default=None, allow_none=True, validate=validate.Regexp(domain.ORDER_CODE))
    limit = fields.Integer(strict=True, load_default=50, validate=validate.Range(min=1, max=100))


class ProcessorAccountInputSchema(Schema):
    """What an operator sets for a merchant's processor account. The secrets are kept
    only sealed; an Asaas account without a `webhook_token` gets one billing makes."""

    merchant_id = fields.String(required=True, validate=slug)
    processor = fields.String(required=True, validate=validate.OneOf(tuple(ADAPTERS)))
    environment = fields.String(required=True, validate=validate.OneOf(ENVIRONMENTS))
    api_key = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=500))
    webhook_token = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=255))
    # The merchant's owners, who are told of every change.
    notify = fields.List(LowerEmail(), required=True, validate=validate.Length(min=1, max=MAX_OWNER_EMAILS))

    @validates_schema
    def check_rules(self, data, **kwargs):
        problems = domain.processor_account_problems(data)
        if len(", ".join(data["notify"])) > MAX_OWNERS_LENGTH:
            problems["notify"] = [f"At most {MAX_OWNERS_LENGTH} characters in all."]
        if problems:
            raise ValidationError(problems)


class ProcessorAccountSchema(Schema):
    """An account as anyone may see it: never a secret, the API key's last four at most."""

    id = fields.String()
    merchant_id = fields.String()
    processor = fields.String()
    environment = fields.String()
    api_key_hint = fields.String()
    notify = fields.List(fields.String(), attribute="notify_emails")
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()


# -- views (dumped from rows)

class PaymentViewSchema(Schema):
    method = fields.String(attribute="payment_method")
    card_brand = fields.String()
    card_last4 = fields.String()
    boleto_line = fields.String()
    boleto_due_date = fields.Date()
    boleto_barcode = fields.Function(domain.boleto_barcode)
    boleto_pdf_url = fields.String()
    pix_code = fields.String()


class BuyerViewSchema(Schema):
    name = fields.String(attribute="buyer_name")
    email = fields.String()
    document = fields.String(attribute="buyer_document")


class OrderSchema(Schema):
    code = fields.String()
    merchant = fields.Function(lambda order: {"id": order.merchant_id})
    product_name = fields.String()
    amount_cents = fields.Integer()
    installments = fields.Integer()
    status = fields.String()
    created_at = fields.AwareDateTime()
    paid_at = fields.AwareDateTime()
    payment = fields.Function(lambda order: PaymentViewSchema().dump(order))
    buyer = fields.Function(lambda order: BuyerViewSchema().dump(order))
    address = fields.Dict()
    subscription_id = fields.String()
    cycle_number = fields.Integer()
    idempotency_key = fields.String()
    kind = fields.String()
    decline_reason = fields.String()


class RefundSchema(Schema):
    id = fields.String()
    amount_cents = fields.Integer()
    reason = fields.String()
    actor = fields.String()
    status = fields.String()
    failure_reason = fields.String()
    created_at = fields.AwareDateTime()
    settled_at = fields.AwareDateTime()


class PaymentMethodSchema(Schema):
    token = fields.String()
    brand = fields.String()
    last4 = fields.String()
    exp = fields.String()


class TicketSchema(Schema):
    ticket = fields.String()
    form_url = fields.String()
    expires_at = fields.AwareDateTime()


# -- event data

class OrderEventSchema(Schema):
    """Data of `order_created` and `order_paid`."""

    order_id = fields.String(required=True)
    code = fields.String(required=True, validate=validate.Regexp(domain.ORDER_CODE))
    email = fields.Email(required=True)
    subscription_id = fields.String(required=True, allow_none=True)
    cycle_number = fields.Integer(required=True, allow_none=True)
    # What the charge was for and its key; none for a checkout's order.
    kind = fields.String(required=True, allow_none=True)
    idempotency_key = fields.String(required=True, allow_none=True)
    amount_cents = fields.Integer(required=True)
    status = fields.String(required=True, validate=validate.OneOf(domain.ORDER_STATUSES))
    method = fields.String(required=True, validate=validate.OneOf(domain.PAYMENT_METHODS))


class OrderSettledEventSchema(OrderEventSchema):
    """Data of `order_paid` and `order_awaiting_payment`. `settled_at_charge`: true when it was settled in billing's answer to the charge
    request, which its caller (the renewal job, a plan change) has therefore had; false
    when it came later (a boleto or pix paid, a lost card answer looked up, an intake)."""

    settled_at_charge = fields.Boolean(required=True)


class ChargeFailedEventSchema(OrderSettledEventSchema):
    decline_reason = fields.String(required=True)


class RefundEventSchema(Schema):
    """Data of `order_refunded` (the processor confirmed a refund) and `refund_failed`."""

    refund_id = fields.String(required=True)
    order_id = fields.String(required=True)
    code = fields.String(required=True, validate=validate.Regexp(domain.ORDER_CODE))
    email = fields.Email(required=True)
    subscription_id = fields.String(required=True, allow_none=True)
    method = fields.String(required=True, validate=validate.OneOf(domain.PAYMENT_METHODS))
    # This refund's amount, the order's, and all of the order's confirmed refunds.
    amount_cents = fields.Integer(required=True)
    order_amount_cents = fields.Integer(required=True)
    refunded_cents = fields.Integer(required=True)
    order_status = fields.String(required=True, validate=validate.OneOf(domain.ORDER_STATUSES))
    status = fields.String(required=True, validate=validate.OneOf(domain.REFUND_STATUSES))
    reason = fields.String(required=True, allow_none=True)
    actor = fields.String(required=True, validate=validate.OneOf(domain.REFUND_ACTORS))
    failure_reason = fields.String(required=True, allow_none=True)


class PaymentMethodAddedEventSchema(Schema):
    token = fields.String(required=True)
    brand = fields.String(required=True, validate=validate.OneOf(CARD_BRANDS))
    last4 = fields.String(required=True, validate=validate.Regexp(r"^\d{4}$"))
    exp = fields.String(required=True)
    email = fields.String(required=True)


class ProcessorAccountChangedEventSchema(Schema):
    """Data of `processor_account_changed`: no secret, the API key's last four only."""

    account_id = fields.String(required=True)
    processor = fields.String(required=True, validate=validate.OneOf(tuple(ADAPTERS)))
    environment = fields.String(required=True, validate=validate.OneOf(ENVIRONMENTS))
    api_key_hint = fields.String(required=True, validate=validate.Length(max=4))
    # created, or updated (a new key, token, processor, environment or owners)
    change = fields.String(required=True, validate=validate.OneOf(("created", "updated")))
    # The merchant's owners, whom notifications writes to.
    notify = fields.List(fields.Email(), required=True)


# The most charges one `charge_batch` call takes (the renewal job sends its batches), and
# the most orders one `orders_by_keys` call looks up.
MAX_CHARGE_BATCH = 500


class OrdersByKeysSchema(Schema):
    """The idempotency keys whose charges are looked up (never made)."""

    idempotency_keys = fields.List(
        fields.String(validate=validate.Length(min=1, max=200)), required=True,
        validate=validate.Length(max=MAX_CHARGE_BATCH),
    )
