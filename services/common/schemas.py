"""Marshmallow pieces every service shares: the identity contract each buyer RPC
receives from the gateway, and the field types of checkout intake."""
from datetime import timezone

from marshmallow import Schema, ValidationError, fields, validate

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


class CardOnFileSchema(Schema):
    """A card as anyone but billing's card form knows it: the processor's token, brand,
    last four digits and expiry, never its number. (Schemas add `method` and its rules.)"""

    card_brand = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(CARD_BRANDS))
    card_last4 = fields.String(load_default=None, allow_none=True, validate=validate.Regexp(r"^\d{4}$"))
    card_exp = fields.String(
        load_default=None, allow_none=True,
        validate=validate.Regexp(r"^(0[1-9]|1[0-2])/\d{4}$", error="Use MM/YYYY."),
    )
    token = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=200))
