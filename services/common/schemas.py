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


def optional_string(max_length, **kwargs):
    return fields.String(load_default=None, allow_none=True, validate=validate.Length(max=max_length), **kwargs)


class IdentitySchema(Schema):
    """Who is asking, as the gateway's session says; never taken from a request body."""

    email = LowerEmail(required=True)
    merchant_id = fields.String(required=True, allow_none=True)
    session_id = fields.String(required=True)
    # Where a merchant-scoped (SSO) session's "back to <merchant>" link leads.
    return_url = fields.String(load_default=None, allow_none=True)
