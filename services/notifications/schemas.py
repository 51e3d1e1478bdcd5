"""notifications' RPC payloads and event data."""
from marshmallow import Schema, fields, validate

from services.notifications.models import STATUSES

MAX_LIST_LIMIT = 500


class SendLoginEmailSchema(Schema):
    email = fields.Email(required=True)
    link = fields.Url(required=True, require_tld=False, schemes={"http", "https"})
    code = fields.String(required=True, validate=validate.Regexp(r"^[0-9]{6}$"))
    expires_at = fields.AwareDateTime(required=True)


class ListOutboxSchema(Schema):
    status = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(STATUSES))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=MAX_LIST_LIMIT))


class SendResultSchema(Schema):
    status = fields.String()
    email_id = fields.String()


class OutgoingEmailSchema(Schema):
    id = fields.String()
    kind = fields.String()
    recipient = fields.String()
    subject = fields.String()
    status = fields.String()
    attempts = fields.Integer()
    last_error = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()
    sent_at = fields.AwareDateTime(allow_none=True)


class EmailSentSchema(Schema):
    email_id = fields.String(required=True)
    kind = fields.String(required=True)
    recipient = fields.String(required=True)


class EmailFailedSchema(EmailSentSchema):
    error = fields.String(required=True)
