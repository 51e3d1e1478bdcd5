"""auth's RPC payloads and event data."""
from marshmallow import Schema, ValidationError, fields, validate

from services.common.identity import InvalidEmail, normalize_email

# Tokens are 43 characters; the bound only keeps absurd input out of the hash.
MAX_TOKEN_LENGTH = 512
MAX_USER_AGENT_LENGTH = 512


class Email(fields.String):
    """An e-mail a buyer typed to log in, loaded in its normal form (spaces around it forgiven)."""

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            return normalize_email(value)
        except InvalidEmail as error:
            raise ValidationError(str(error)) from None


class ClientAddress(fields.String):
    def __init__(self, **kwargs):
        super().__init__(load_default=None, allow_none=True, validate=validate.Length(max=45), **kwargs)


class Token(fields.String):
    def __init__(self, **kwargs):
        super().__init__(required=True, validate=validate.Length(min=1, max=MAX_TOKEN_LENGTH), **kwargs)


class RequestLoginLinkSchema(Schema):
    email = Email(required=True)
    client_address = ClientAddress()


class RedeemLoginSchema(Schema):
    token = Token()
    # Shown to the buyer in the list of sessions; truncated rather than refused.
    user_agent = fields.Function(
        deserialize=lambda value: str(value)[:MAX_USER_AGENT_LENGTH],
        load_default=None, allow_none=True,
    )
    client_address = ClientAddress()


class SessionTokenSchema(Schema):
    session_token = Token()


class SessionSchema(Schema):
    id = fields.String()
    email = fields.String()
    merchant_id = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()
    expires_at = fields.AwareDateTime()


class RedeemedLoginSchema(Schema):
    session_token = fields.String()
    session = fields.Nested(SessionSchema)


class LoginLinkRequestedSchema(Schema):
    request_id = fields.String(required=True)
    email = fields.String(required=True)


class SessionStartedSchema(Schema):
    session_id = fields.String(required=True)
    email = fields.String(required=True)
    merchant_id = fields.String(required=True, allow_none=True)
