"""notifications' RPC payloads, views and event data."""
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates, validates_schema

from services.common.schemas import slug
from services.common.urls import is_under
from services.notifications.domain import WEBHOOK_EVENT_TYPES
from services.notifications.outbound import DestinationRefused
from services.notifications.models import DELIVERY_STATUSES, STATUSES

MAX_LIST_LIMIT = 500
MAX_WEBHOOK_ENDPOINTS = 10


class SendLoginEmailSchema(Schema):
    email = fields.Email(required=True)
    link = fields.Url(required=True, require_tld=False, schemes={"http", "https"})
    code = fields.String(required=True, validate=validate.Regexp(r"^[0-9]{6}$"))
    expires_at = fields.AwareDateTime(required=True)

    def __init__(self, portal_base_url, **kwargs):
        super().__init__(**kwargs)
        self.portal_base_url = portal_base_url

    @validates("link")
    def link_is_the_portals(self, link, data_key):
        # A login e-mail is trusted by its reader: it may only ever send them to the portal.
        if not is_under(link, self.portal_base_url):
            raise ValidationError("The link must be on the portal's own address (PORTAL_BASE_URL).")


class ListOutboxSchema(Schema):
    status = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(STATUSES))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=MAX_LIST_LIMIT))


class SendResultSchema(Schema):
    status = fields.String()
    email_id = fields.String()


class OutgoingEmailSchema(Schema):
    """An e-mail as ops see it: who, what and how it went; never its body."""

    id = fields.String()
    kind = fields.String()
    recipient = fields.String()
    subject = fields.String()
    status = fields.String()
    attempts = fields.Integer()
    last_error = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()
    sent_at = fields.AwareDateTime(allow_none=True)
    event_id = fields.String(allow_none=True)
    merchant_id = fields.String(allow_none=True)
    message_id = fields.String(allow_none=True)
    next_attempt_at = fields.AwareDateTime(allow_none=True)


class IncomingEventSchema(Schema):
    """The envelope of an event notifications consumes; later additions are ignored."""

    class Meta:
        unknown = EXCLUDE

    event_id = fields.String(required=True, validate=validate.Length(min=1, max=36))
    type = fields.String(required=True)
    merchant_id = fields.String(required=True, allow_none=True)
    occurred_at = fields.String(required=True)
    data = fields.Dict(required=True)


class WebhookEndpointInputSchema(Schema):
    url = fields.Url(required=True, require_tld=False, schemes={"http", "https"}, validate=validate.Length(max=2000))
    # Empty or left out: every event.
    event_types = fields.List(fields.String(validate=validate.OneOf(WEBHOOK_EVENT_TYPES)), load_default=list)


class WebhookSettingsInputSchema(Schema):
    """A merchant's endpoints; each URL must go where `destinations` (an
    `outbound.Destinations`) allows."""

    endpoints = fields.List(
        fields.Nested(WebhookEndpointInputSchema), required=True, validate=validate.Length(max=MAX_WEBHOOK_ENDPOINTS),
    )
    # A new secret, for a merchant whose secret leaked; the old one stops working at once.
    rotate_secret = fields.Boolean(load_default=False)

    def __init__(self, *, destinations, **kwargs):
        super().__init__(**kwargs)
        self.destinations = destinations

    @validates_schema
    def check_urls(self, data, **kwargs):
        urls = [endpoint["url"] for endpoint in data.get("endpoints", [])]
        if len(set(urls)) != len(urls):
            raise ValidationError({"endpoints": ["Each URL once."]})
        refused = {}
        for index, url in enumerate(urls):
            try:
                self.destinations.check_url(url)
            except DestinationRefused as refusal:
                refused[index] = {"url": [str(refusal)]}
        if refused:
            raise ValidationError({"endpoints": refused})


class MerchantIdSchema(Schema):
    merchant_id = fields.String(required=True, validate=slug)


class WebhookEndpointSchema(Schema):
    id = fields.String()
    url = fields.String()
    event_types = fields.List(fields.String())


class WebhookSettingsSchema(Schema):
    merchant_id = fields.String()
    # Shown to this merchant only (the gateway asks with the merchant's own API key).
    secret = fields.String(allow_none=True)
    endpoints = fields.List(fields.Nested(WebhookEndpointSchema))
    event_types = fields.Function(lambda _settings: list(WEBHOOK_EVENT_TYPES))


class ListDeliveriesSchema(Schema):
    merchant_id = fields.String(load_default=None, allow_none=True, validate=slug)
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=MAX_LIST_LIMIT))


class DeliveriesPageSchema(ListDeliveriesSchema):
    """A merchant's page of its delivery log: after `cursor` (a page's `next_cursor`),
    optionally of one status and one event type."""

    merchant_id = fields.String(required=True, validate=slug)
    limit = fields.Integer(strict=True, load_default=50, validate=validate.Range(min=1, max=100))
    cursor = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=36))
    status = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(DELIVERY_STATUSES))
    event_type = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=100))


class DeliveryAttemptSchema(Schema):
    at = fields.AwareDateTime()
    status_code = fields.Integer(allow_none=True)
    error = fields.String(allow_none=True)


class WebhookDeliverySchema(Schema):
    id = fields.String()
    merchant_id = fields.String()
    endpoint_id = fields.String()
    url = fields.String()
    event_id = fields.String()
    event_type = fields.String()
    status = fields.String()
    attempts = fields.Integer()
    last_status_code = fields.Integer(allow_none=True)
    last_error = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()
    delivered_at = fields.AwareDateTime(allow_none=True)
    next_attempt_at = fields.AwareDateTime(allow_none=True)
    log = fields.List(fields.Nested(DeliveryAttemptSchema))


# -- event data

class EmailSentSchema(Schema):
    email_id = fields.String(required=True)
    kind = fields.String(required=True)
    recipient = fields.String(required=True)


class EmailFailedSchema(EmailSentSchema):
    error = fields.String(required=True)


class WebhookFailedSchema(Schema):
    delivery_id = fields.String(required=True)
    event_id = fields.String(required=True)
    event_type = fields.String(required=True)
    url = fields.String(required=True)
    attempts = fields.Integer(required=True)
    last_status_code = fields.Integer(required=True, allow_none=True)
    last_error = fields.String(required=True)
