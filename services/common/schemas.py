"""Marshmallow pieces every service shares: the identity contract each buyer RPC
receives from the gateway, and the field types of checkout intake."""
from datetime import timezone

from marshmallow import Schema, ValidationError, fields, pre_load, validate

from services.common.identity import InvalidEmail, normalize_email

# How merchants and offers are named in URLs and in a checkout's calls.
slug = validate.And(
    validate.Length(min=1, max=64),
    validate.Regexp(r"^[a-z0-9]+(?:-[a-z0-9]+)*$", error="Use lower-case letters, digits and dashes."),
)


class UtcIsoDateTime(fields.AwareDateTime):
    """An ISO-8601 time with its offset, kept in UTC."""

    def _deserialize(self, value, attr, data, **kwargs):
        return super()._deserialize(value, attr, data, **kwargs).astimezone(timezone.utc)


class LowerEmail(fields.Email):
    """An e-mail address in the form every service keeps and compares (`normalize_email`)."""

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            return normalize_email(super()._deserialize(value, attr, data, **kwargs))
        except InvalidEmail as error:
            raise ValidationError(str(error)) from None


CARD_BRANDS = ("visa", "mastercard", "amex", "elo", "hipercard", "diners", "discover", "jcb")


def optional_string(max_length, **kwargs):
    return fields.String(load_default=None, allow_none=True, validate=validate.Length(max=max_length), **kwargs)


class IdentitySchema(Schema):
    """Who is asking, as the gateway's session says; never taken from a request body."""

    email = LowerEmail(required=True)
    # The merchant a session is scoped to (merchant SSO), or None: every merchant.
    merchant_id = fields.String(required=True, allow_none=True, validate=slug)
    session_id = fields.String(required=True)
    # Where a merchant-scoped (SSO) session's "back to <merchant>" link leads.
    return_url = fields.String(load_default=None, allow_none=True)


CARD_EXP = validate.Regexp(r"^(0[1-9]|1[0-2])/\d{4}$", error="Use MM/YYYY.")
CARD_LAST4 = validate.Regexp(r"^\d{4}$")
CARD_REF = validate.Length(min=1, max=200)
CUSTOMER_REF = validate.Length(min=1, max=100)


class SaleCardSchema(Schema):
    """A sale's card as a checkout hands it over: the processor's refs (`customer_ref`,
    the processor's customer the card belongs to, where it has customers: Asaas,
    Mercado Pago) and what a buyer may be shown."""

    customer_ref = fields.String(load_default=None, allow_none=True, validate=CUSTOMER_REF)
    card_ref = fields.String(required=True, validate=CARD_REF)
    brand = fields.String(required=True, validate=validate.OneOf(CARD_BRANDS))
    last4 = fields.String(required=True, validate=CARD_LAST4)
    exp = fields.String(required=True, validate=CARD_EXP)


# A sale's card (`SaleCardSchema`) → the names every service keeps a card under.
SALE_CARD_FIELDS = {"card_ref": "token", "brand": "card_brand", "last4": "card_last4", "exp": "card_exp",
                    "customer_ref": "customer_ref"}
SALE_CARD = SaleCardSchema()


def sent_as_sale_card(raw_payment):
    """Whether a request named its card as `card` (else by the older flat fields)."""
    return isinstance(raw_payment, dict) and "card" in raw_payment


def as_sale_card(payment):
    """A loaded card payment handed on as a sale's `card`, so that whoever checks it next
    names a refused field as the sale did."""
    card = {name: payment[kept] for name, kept in SALE_CARD_FIELDS.items() if payment.get(kept) is not None}
    return {"method": payment["method"], "card": card}


class CardOnFileSchema(Schema):
    """A card as anyone but billing's card form knows it: the processor's token, brand,
    last four digits and expiry, never its number. (Schemas add `method` and its rules.)

    A sale may hand it over as `card` (`SaleCardSchema`) instead: checked as such
    (errors under `card`) and loaded under these names."""

    card_brand = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(CARD_BRANDS))
    card_last4 = fields.String(load_default=None, allow_none=True, validate=CARD_LAST4)
    card_exp = fields.String(load_default=None, allow_none=True, validate=CARD_EXP)
    token = fields.String(load_default=None, allow_none=True, validate=CARD_REF)
    customer_ref = fields.String(load_default=None, allow_none=True, validate=CUSTOMER_REF)

    @pre_load
    def take_sale_card(self, data, **kwargs):
        if not isinstance(data, dict) or "card" not in data:
            return data
        mixed = sorted(set(SALE_CARD_FIELDS.values()) & set(data))
        if mixed:
            raise ValidationError({name: ["Send the card as `card` only."] for name in mixed})
        if not isinstance(data["card"], dict):
            raise ValidationError({"card": ["An object: customer_ref, card_ref, brand, last4, exp."]})
        try:
            card = SALE_CARD.load(data["card"])
        except ValidationError as error:
            raise ValidationError({"card": error.messages}) from None
        rest = {name: value for name, value in data.items() if name != "card"}
        return {**rest, **{SALE_CARD_FIELDS[name]: value for name, value in card.items()}}
