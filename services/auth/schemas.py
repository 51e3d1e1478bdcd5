"""auth's RPC payloads and event data."""
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from services.common.identity import InvalidEmail, normalize_email
from services.common.schemas import slug

# Tokens are 43 characters; the bound only keeps absurd input out of the hash.
MAX_TOKEN_LENGTH = 512
MAX_USER_AGENT_LENGTH = 512
MAX_URL_LENGTH = 2000


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
    def __init__(self, required=True, **kwargs):
        if not required:
            kwargs.update(load_default=None, allow_none=True)
        super().__init__(required=required, validate=validate.Length(min=1, max=MAX_TOKEN_LENGTH), **kwargs)


class UserAgent(fields.Function):
    # Shown to the buyer in the list of sessions; truncated rather than refused.
    def __init__(self, **kwargs):
        super().__init__(
            deserialize=lambda value: str(value)[:MAX_USER_AGENT_LENGTH],
            load_default=None, allow_none=True, **kwargs,
        )


class RequestLoginLinkSchema(Schema):
    email = Email(required=True)
    client_address = ClientAddress()
    # The browser's login nonce (its cookie); only its hash is kept.
    nonce = Token(required=False)
    # The merchant whose support asks for its buyer, or None: the buyer asks.
    merchant_id = fields.String(load_default=None, allow_none=True, validate=slug)


class RedeemLoginSchema(Schema):
    """A link's token with the asking browser's nonce or the code; or, on the page
    that asked, the nonce with the code."""

    token = Token(required=False)
    nonce = Token(required=False)
    code = fields.String(
        load_default=None, allow_none=True,
        validate=validate.Regexp(r"^[0-9]{6}$", error="O código tem 6 dígitos."),
    )
    user_agent = UserAgent()
    client_address = ClientAddress()

    @validates_schema
    def token_or_code(self, data, **kwargs):
        if not data.get("token") and not data.get("code"):
            raise ValidationError("Send the link's token or the code.", "token")


class LoginTokenSchema(Schema):
    token = Token()


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


class ActiveSessionSchema(Schema):
    """One line of "where you are logged in"."""

    id = fields.String()
    device = fields.String()
    address = fields.String(attribute="client_address", allow_none=True)
    created_at = fields.AwareDateTime()
    last_seen_at = fields.AwareDateTime()
    current = fields.Boolean()
    merchant_id = fields.String(allow_none=True)


class SessionIdSchema(Schema):
    session_id = fields.String(required=True, validate=validate.Length(min=1, max=36))


class IssueSsoTicketSchema(Schema):
    merchant_id = fields.String(required=True, validate=slug)
    email = Email(required=True)
    return_url = fields.Url(
        required=True, schemes={"http", "https"}, require_tld=False,
        validate=validate.Length(max=MAX_URL_LENGTH),
    )


class SsoTicketSchema(Schema):
    url = fields.String()
    expires_at = fields.AwareDateTime()


class RedeemSsoTicketSchema(Schema):
    ticket = Token()
    user_agent = UserAgent()
    client_address = ClientAddress()


class MerchantIdSchema(Schema):
    merchant_id = fields.String(required=True, validate=slug)


class ApiKeyLookupSchema(Schema):
    prefix = fields.String(required=True, validate=validate.Regexp(r"^[0-9a-f]{12}$", error="Not a key prefix."))


class ApiKeySchema(Schema):
    prefix = fields.String()
    merchant_id = fields.String()
    created_at = fields.AwareDateTime()
    revoked_at = fields.AwareDateTime(allow_none=True)


class LoginLinkRequestedSchema(Schema):
    request_id = fields.String(required=True)
    email = fields.String(required=True)
    # Who asked: the buyer, or a merchant's support for its buyer (the support API).
    actor = fields.String(required=True, validate=validate.OneOf(("buyer", "merchant")))


class SessionStartedSchema(Schema):
    session_id = fields.String(required=True)
    email = fields.String(required=True)
    merchant_id = fields.String(required=True, allow_none=True)
