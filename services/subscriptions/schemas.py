"""RPC payloads and event data of the subscriptions service.

Input schemas load what callers send (unknown keys are refused, so a stray card
number is never accepted); the same schemas, or view schemas, dump what goes back.
"""
from marshmallow import Schema, ValidationError, fields, post_dump, validate, validates_schema

from services.common.schemas import CardOnFileSchema, LowerEmail, UtcIsoDateTime, optional_string, slug
from services.subscriptions import domain

MAX_INSTALLMENTS = 12
# offers.price_cents is a 32-bit integer.
MAX_PRICE_CENTS = 2**31 - 1
ACTORS = (domain.BUYER, domain.MERCHANT, domain.SYSTEM)
PLAN_CHANGE_KINDS = (domain.UPGRADE, domain.NEW_CYCLE, domain.SCHEDULED)


class Document(fields.String):
    """A CPF or CNPJ with valid check digits, kept in its usual punctuation."""

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            return domain.normalize_document(super()._deserialize(value, attr, data, **kwargs))
        except ValueError as error:
            raise ValidationError(str(error)) from None


class MerchantSchema(Schema):
    id = fields.String(required=True, validate=slug)
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    customer_can_change_payment_method = fields.Boolean(load_default=False)
    customer_can_change_plan = fields.Boolean(load_default=False)
    customer_can_cancel = fields.Boolean(load_default=False)
    cancel_mode = fields.String(load_default="at_period_end", validate=validate.OneOf(domain.CANCEL_MODES))
    payment_methods_allowed = fields.List(
        fields.String(validate=validate.OneOf(domain.PAYMENT_METHODS)),
        load_default=lambda: ["credit_card"],
        validate=validate.Length(max=len(domain.PAYMENT_METHODS)),
    )
    support_email = fields.Email(load_default=None, allow_none=True)
    support_phone = optional_string(30)
    support_url = fields.Url(load_default=None, allow_none=True, schemes={"http", "https"})
    allowed_origins = fields.List(fields.String(validate=validate.Length(max=300)), load_default=list)
    brand_name = optional_string(200)
    accent_color = fields.String(
        load_default=None, allow_none=True,
        validate=validate.Regexp(domain.ACCENT_COLOR, error="Use #RRGGBB."),
    )

    @validates_schema
    def check_rules(self, data, **kwargs):
        methods = data.get("payment_methods_allowed", [])
        if len(set(methods)) != len(methods):
            raise ValidationError({"payment_methods_allowed": ["Each method once."]})
        problems = domain.merchant_problems(data)
        if problems:
            raise ValidationError(problems)


class MerchantSettingsSchema(MerchantSchema):
    """A merchant's own settings, as its API key changes them (the id is the key's)."""

    class Meta:
        exclude = ("id",)


class PlanChangeOptionsSchema(Schema):
    plan_change_options = fields.List(fields.String(validate=slug), required=True, validate=validate.Length(max=50))


class OfferSchema(Schema):
    merchant_id = fields.String(required=True, validate=slug)
    id = fields.String(required=True, validate=slug)
    product_name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    plan_name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    price_cents = fields.Integer(strict=True, required=True, validate=validate.Range(min=1, max=MAX_PRICE_CENTS))
    periodicity_months = fields.Integer(
        strict=True, required=True, validate=validate.OneOf(domain.PERIODICITIES_MONTHS),
    )
    max_installments = fields.Integer(
        strict=True, load_default=1, validate=validate.Range(min=1, max=MAX_INSTALLMENTS),
    )
    # Left out: the offer keeps its options (none for a new offer). Options are
    # managed on their own, and may name offers created after this one.
    plan_change_options = fields.List(fields.String(validate=slug))
    # Left out: the offer keeps its methods (a new offer: every method its merchant
    # allows, as the merchant's settings change). Shown: the methods it accepts now.
    payment_methods_accepted = fields.List(
        fields.String(validate=validate.OneOf(domain.PAYMENT_METHODS)),
        validate=validate.Length(min=1, max=len(domain.PAYMENT_METHODS)),
    )
    status = fields.String(validate=validate.OneOf(domain.OFFER_STATUSES))

    @validates_schema
    def each_method_once(self, data, **kwargs):
        methods = data.get("payment_methods_accepted") or []
        if len(set(methods)) != len(methods):
            raise ValidationError({"payment_methods_accepted": ["Each method once."]})

    @post_dump(pass_original=True)
    def methods_accepted_now(self, data, offer, **kwargs):
        return {**data, "payment_methods_accepted": list(offer.accepted_methods)}


class OfferChangeSchema(OfferSchema):
    """An offer's terms as its merchant (or an operator) changes them: only those sent change."""

    class Meta:
        exclude = ("merchant_id", "id")


class IdPageSchema(Schema):
    """A page of a list ordered by id: up to `limit` items after the `cursor` (the
    `next_cursor` of the page before)."""

    cursor = fields.String(load_default=None, allow_none=True, validate=slug)
    limit = fields.Integer(strict=True, load_default=50, validate=validate.Range(min=1, max=100))


class PageRequestSchema(IdPageSchema):
    """A page of offers or merchants, optionally of one `status`."""

    status = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(domain.OFFER_STATUSES))


class CustomerPageSchema(IdPageSchema):
    """A page of a buyer's subscriptions at a merchant, by the buyer's e-mail."""

    email = LowerEmail(required=True)


class SupportPageSchema(IdPageSchema):
    """A page of a list whose ids are numbers (a buyer's contacts, an activity log)."""

    cursor = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=0, max=2**63 - 1))


class AddressSchema(Schema):
    street = fields.String(required=True, validate=validate.Length(min=1, max=200))
    number = fields.String(required=True, validate=validate.Length(min=1, max=20))
    complement = optional_string(100)
    district = optional_string(100)
    city = fields.String(required=True, validate=validate.Length(min=1, max=100))
    state = fields.String(required=True, validate=validate.Regexp(r"^[A-Z]{2}$", error="Use the two-letter UF."))
    postal_code = fields.String(required=True, validate=validate.Regexp(r"^\d{5}-\d{3}$", error="Use 00000-000."))
    country = fields.String(load_default="BR", validate=validate.Regexp(r"^[A-Z]{2}$"))


class ContactSchema(Schema):
    merchant_id = fields.String(required=True, validate=slug)
    email = LowerEmail(required=True)
    name = optional_string(200)
    document = Document(load_default=None, allow_none=True)
    phone = optional_string(30)
    address = fields.Nested(AddressSchema, load_default=None, allow_none=True)


class CustomerQuerySchema(SupportPageSchema):
    """A merchant looks its buyers up by e-mail or by CPF/CNPJ (one of them)."""

    email = LowerEmail(load_default=None, allow_none=True)
    document = Document(load_default=None, allow_none=True)

    @validates_schema
    def check_one_key(self, data, **kwargs):
        if (data.get("email") is None) == (data.get("document") is None):
            raise ValidationError("Send either email or document.", "email")


class CustomerSchema(ContactSchema):
    """A buyer as the merchant knows them (what its checkouts sent)."""

    id = fields.Integer()


class PaymentSchema(CardOnFileSchema):
    """How a subscription pays: a card by its processor token and display data only."""

    method = fields.String(required=True, validate=validate.OneOf(domain.PAYMENT_METHODS))

    @validates_schema
    def check_method_fields(self, data, **kwargs):
        problems = domain.payment_problems(data)
        if problems:
            raise ValidationError(problems)


class SubscriptionInputSchema(Schema):
    """What a checkout's intake registers."""

    merchant_id = fields.String(required=True, validate=slug)
    external_id = fields.String(required=True, validate=validate.Length(min=1, max=100))
    offer_id = fields.String(required=True, validate=slug)
    email = LowerEmail(required=True)
    status = fields.String(required=True, validate=validate.OneOf(domain.SUBSCRIPTION_STATUSES))
    cancel_reason = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(domain.CANCEL_REASONS))
    cycle_number = fields.Integer(strict=True, required=True, validate=validate.Range(min=1))
    cycle_start = UtcIsoDateTime(required=True)
    cycle_end = UtcIsoDateTime(required=True)
    # Left out: computed from the status and the cycle.
    next_charge_at = UtcIsoDateTime(load_default=None, allow_none=True)
    installments = fields.Integer(strict=True, load_default=1, validate=validate.Range(min=1, max=MAX_INSTALLMENTS))
    payment = fields.Nested(PaymentSchema, required=True)
    # When the checkout sold it; left out: now.
    created_at = UtcIsoDateTime(load_default=None, allow_none=True)


class QuoteRequestSchema(Schema):
    offer_id = fields.String(required=True, validate=slug)


class PlanChangeRequestSchema(Schema):
    quote_id = fields.String(required=True, validate=validate.Length(min=1, max=36))
    installments = fields.Integer(strict=True, load_default=1, validate=validate.Range(min=1, max=MAX_INSTALLMENTS))


class PaymentMethodChangeSchema(Schema):
    """A buyer's new payment method: a card only by the token card entry gave them."""

    method = fields.String(required=True, validate=validate.OneOf(domain.PAYMENT_METHODS))
    card_token = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=200))

    @validates_schema
    def check_token(self, data, **kwargs):
        if data["method"] == "credit_card" and not data["card_token"]:
            raise ValidationError({"card_token": ["Required for credit_card."]})
        if data["method"] != "credit_card" and data["card_token"]:
            raise ValidationError({"card_token": [f"Only for credit_card, not {data['method']}."]})


class CancelRequestSchema(Schema):
    reason = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(domain.CANCEL_FEEDBACK))
    comment = optional_string(500)


class MerchantCancelRequestSchema(CancelRequestSchema):
    """The merchant cancels for its buyer, saying when: at the period's end, or now (a
    past-due subscription has no paid period left: it ends now either way)."""

    at_period_end = fields.Boolean(required=True)


class IdempotencyKeySchema(Schema):
    idempotency_key = fields.String(
        required=True, validate=validate.Regexp(r"^[\x21-\x7e]{1,255}$", error="1 to 255 visible ASCII characters."),
    )


# -- views (dumped from rows)

class SupportSchema(Schema):
    email = fields.String(attribute="support_email")
    phone = fields.String(attribute="support_phone")
    url = fields.String(attribute="support_url")


class MerchantRefSchema(Schema):
    """Who sold the subscription, as its buyer and its e-mails name it."""

    id = fields.String()
    name = fields.String()
    brand_name = fields.String()
    support = fields.Function(lambda merchant: SupportSchema().dump(merchant))


class CycleSchema(Schema):
    number = fields.Integer(attribute="cycle_number")
    start = fields.AwareDateTime(attribute="cycle_start")
    end = fields.AwareDateTime(attribute="cycle_end")


class PaymentMethodViewSchema(Schema):
    method = fields.String(attribute="payment_method")
    card_brand = fields.String()
    card_last4 = fields.String()
    card_exp = fields.String()


class OfferViewSchema(Schema):
    id = fields.String()
    product_name = fields.String()
    plan_name = fields.String()
    price_cents = fields.Integer()
    periodicity_months = fields.Integer()
    max_installments = fields.Integer()


class PendingPlanChangeSchema(Schema):
    offer = fields.Nested(OfferViewSchema, attribute="pending_offer")
    # scheduled (at the cycle end, undoable) or awaiting_payment (a boleto/pix upgrade).
    status = fields.String(attribute="pending_change_status")
    quote_id = fields.String(attribute="pending_quote_id")
    effective_at = fields.Function(
        lambda subscription: subscription.cycle_end.isoformat()
        if subscription.pending_change_status == domain.SCHEDULED else None
    )


class SubscriptionSchema(Schema):
    id = fields.String()
    merchant = fields.Nested(MerchantRefSchema)
    offer_id = fields.String()
    product_name = fields.String(attribute="offer.product_name")
    plan_name = fields.String(attribute="offer.plan_name")
    price_cents = fields.Integer(attribute="offer.price_cents")
    periodicity_months = fields.Integer(attribute="offer.periodicity_months")
    status = fields.String()
    cancel_reason = fields.String()
    cancel_at_period_end = fields.Boolean()
    cycle = fields.Function(lambda subscription: CycleSchema().dump(subscription))
    next_charge_at = fields.AwareDateTime()
    payment_method = fields.Function(lambda subscription: PaymentMethodViewSchema().dump(subscription))
    installments = fields.Integer()
    balance_cents = fields.Integer()
    pending_plan_change = fields.Function(
        lambda subscription: PendingPlanChangeSchema().dump(subscription) if subscription.pending_change_status else None
    )
    cancel_feedback = fields.String()
    cancel_comment = fields.String()
    canceled_at = fields.AwareDateTime()
    created_at = fields.AwareDateTime()


class SelfServiceSchema(Schema):
    """What the merchant lets its buyers do; the owning service still checks each call."""

    change_payment_method = fields.Boolean(attribute="customer_can_change_payment_method")
    change_plan = fields.Boolean(attribute="customer_can_change_plan")
    cancel = fields.Boolean(attribute="customer_can_cancel")
    cancel_mode = fields.String()
    payment_methods_allowed = fields.List(fields.String())


class NextChargeSchema(Schema):
    at = fields.AwareDateTime()
    amount_cents = fields.Integer()


class SubscriptionDetailSchema(SubscriptionSchema):
    """A subscription as its page shows it at `now`: with what the buyer may do now
    (`allowed_operations`, the operations the service accepts), when a cancellation
    would take effect, and the next charge. Pages only read these; no rule is
    computed twice."""

    def __init__(self, now, **kwargs):
        super().__init__(**kwargs)
        self.now = now

    # The methods its offer accepts, among the merchant's.
    self_service = fields.Function(lambda subscription: {
        **SelfServiceSchema().dump(subscription.merchant), "payment_methods_allowed": subscription.methods_accepted})
    allowed_operations = fields.Method("_allowed_operations")
    # "now" or "at_period_end" (by the merchant's cancel mode); None once it has ended.
    cancel_takes_effect = fields.Function(lambda subscription: subscription.cancel_takes_effect())
    next_charge = fields.Method("_next_charge")

    def _allowed_operations(self, subscription):
        return subscription.allowed_operations(self.now)

    def _next_charge(self, subscription):
        charge = subscription.next_charge()
        return None if charge is None else NextChargeSchema().dump(charge)


# -- event data

class SubscriptionCreatedSchema(Schema):
    subscription_id = fields.String(required=True)
    external_id = fields.String(required=True)
    offer_id = fields.String(required=True)
    email = fields.Email(required=True)
    status = fields.String(required=True, validate=validate.OneOf(domain.SUBSCRIPTION_STATUSES))
    cycle_end = fields.AwareDateTime(required=True)


class QuoteSchema(Schema):
    quote_id = fields.String(attribute="id")
    subscription_id = fields.String()
    from_offer_id = fields.String()
    to_offer_id = fields.String()
    # upgrade, new_cycle or scheduled; takes effect now, on_payment or at cycle_end.
    kind = fields.String()
    takes_effect = fields.String()
    effective_at = fields.AwareDateTime()
    credit_cents = fields.Integer()
    charge_cents = fields.Integer()
    balance_cents = fields.Integer()
    max_installments = fields.Integer()
    payment_method = fields.String()
    cycle = fields.Function(lambda quote: {"start": quote.cycle_start.isoformat(), "end": quote.cycle_end.isoformat()})
    next_renewal_at = fields.AwareDateTime()
    next_renewal_cents = fields.Integer()
    expires_at = fields.AwareDateTime()


class ActivitySchema(Schema):
    at = fields.AwareDateTime()
    # buyer, merchant or system
    actor = fields.String()
    action = fields.String()
    details = fields.Dict()


class PaymentNotAppliedViewSchema(Schema):
    """A paid order a subscription did not take, as operators list them."""

    at = fields.AwareDateTime()
    subscription_id = fields.String()
    merchant_id = fields.String()
    email = fields.String()
    order_code = fields.String()
    amount_cents = fields.Integer()
    kind = fields.String()


class OrderRefSchema(Schema):
    """The order a charge made, as billing answered: enough to show how to pay it."""

    code = fields.String()
    status = fields.String()
    amount_cents = fields.Integer()
    installments = fields.Integer()
    payment = fields.Dict()
    decline_reason = fields.String()


# -- event data (besides subscription_created)

class SubscriptionEventSchema(Schema):
    subscription_id = fields.String(required=True)
    email = fields.Email(required=True)
    # Who made the change: buyer, merchant or system.
    actor = fields.String(required=True, validate=validate.OneOf(ACTORS))


class PlanChangedSchema(SubscriptionEventSchema):
    from_offer_id = fields.String(required=True)
    to_offer_id = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(PLAN_CHANGE_KINDS))
    charge_cents = fields.Integer(required=True)
    balance_cents = fields.Integer(required=True)
    order_code = fields.String(required=True, allow_none=True)
    cycle_number = fields.Integer(required=True)
    cycle_start = fields.AwareDateTime(required=True)
    cycle_end = fields.AwareDateTime(required=True)


class PlanChangeScheduledSchema(SubscriptionEventSchema):
    """A change waiting for the cycle end, or for the payment of its boleto/pix."""

    from_offer_id = fields.String(required=True)
    to_offer_id = fields.String(required=True)
    takes_effect = fields.String(
        required=True, validate=validate.OneOf((domain.TAKES_EFFECT_AT_CYCLE_END, domain.TAKES_EFFECT_ON_PAYMENT)),
    )
    effective_at = fields.AwareDateTime(required=True, allow_none=True)
    order_code = fields.String(required=True, allow_none=True)


class PlanChangeDroppedSchema(SubscriptionEventSchema):
    """A pending change that will not happen: undone by the buyer, its charge failed, or
    the subscription ended first."""

    to_offer_id = fields.String(required=True)
    why = fields.String(required=True, validate=validate.OneOf(("undone", "charge_failed", "not_paid", "canceled")))


class PaymentMethodChangedSchema(SubscriptionEventSchema):
    method = fields.String(required=True, validate=validate.OneOf(domain.PAYMENT_METHODS))
    card_brand = fields.String(required=True, allow_none=True)
    card_last4 = fields.String(required=True, allow_none=True)
    card_exp = fields.String(required=True, allow_none=True)


class CanceledSchema(SubscriptionEventSchema):
    reason = fields.String(required=True, validate=validate.OneOf(domain.CANCEL_REASONS))
    feedback = fields.String(required=True, allow_none=True)
    comment = fields.String(required=True, allow_none=True)
    canceled_at = fields.AwareDateTime(required=True)


class CancellationScheduledSchema(SubscriptionEventSchema):
    effective_at = fields.AwareDateTime(required=True)
    feedback = fields.String(required=True, allow_none=True)
    comment = fields.String(required=True, allow_none=True)


class CancellationUndoneSchema(SubscriptionEventSchema):
    next_charge_at = fields.AwareDateTime(required=True)


class RenewedSchema(SubscriptionEventSchema):
    offer_id = fields.String(required=True)
    cycle_number = fields.Integer(required=True)
    cycle_start = fields.AwareDateTime(required=True)
    cycle_end = fields.AwareDateTime(required=True)
    amount_cents = fields.Integer(required=True)
    order_code = fields.String(required=True)


class PaymentNotAppliedSchema(SubscriptionEventSchema):
    """A paid order the subscription could not take (it ended, or moved on): to refund."""

    order_code = fields.String(required=True)
    amount_cents = fields.Integer(required=True)
    # What the order paid for: a renewal or a plan change.
    kind = fields.String(required=True, validate=validate.OneOf(("renewal", "plan_change")))


class PastDueSchema(SubscriptionEventSchema):
    # The cycle whose charge failed, and how many charges it has had.
    cycle_number = fields.Integer(required=True)
    attempts = fields.Integer(required=True)
    next_retry_at = fields.AwareDateTime(required=True)
    decline_reason = fields.String(required=True, allow_none=True)
    # What the buyer owes, and the open renewal order to see it (None when billing
    # could not make one: decline_reason payment_method_unusable or charge_not_accepted).
    amount_cents = fields.Integer(required=True)
    order_code = fields.String(required=True, allow_none=True)


OFFER_CHANGES = ("created", "updated", "archived")
# Who changed an offer: the merchant (its API key) or an operator (portalctl).
OFFER_ACTORS = ("merchant", "operator")


class OfferActorSchema(Schema):
    actor = fields.String(required=True, validate=validate.OneOf(OFFER_ACTORS))


class OfferChangedSchema(Schema):
    """An offer as it is after a change, what the change set and who made it."""

    offer_id = fields.String(required=True)
    change = fields.String(required=True, validate=validate.OneOf(OFFER_CHANGES))
    # The terms this change set (for a new offer: those it was given beyond the defaults).
    changed = fields.List(fields.String(validate=validate.OneOf(domain.OFFER_TERMS)), required=True)
    actor = fields.String(required=True, validate=validate.OneOf(OFFER_ACTORS))
    product_name = fields.String(required=True)
    plan_name = fields.String(required=True)
    price_cents = fields.Integer(required=True)
    periodicity_months = fields.Integer(required=True)
    max_installments = fields.Integer(required=True)
    payment_methods_accepted = fields.List(fields.String(validate=validate.OneOf(domain.PAYMENT_METHODS)), required=True)
    plan_change_options = fields.List(fields.String(), required=True)
    status = fields.String(required=True, validate=validate.OneOf(domain.OFFER_STATUSES))
