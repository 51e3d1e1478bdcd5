"""Request bodies the gateway accepts, validated before any RPC."""
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema


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
