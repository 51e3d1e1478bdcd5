"""The envelope every event travels in, whoever publishes it.

`{"event_id", "type", "version", "occurred_at", "merchant_id", "data"}`: consumers,
including plain pika ones outside the project, read these keys and nothing else.
"""
import uuid
from datetime import timezone

from marshmallow import Schema, fields, validate

from services.common import clock
from services.common.errors import ValidationFailed


class EnvelopeSchema(Schema):
    event_id = fields.UUID(required=True)
    type = fields.String(required=True, validate=validate.Length(min=1))
    version = fields.Integer(required=True, validate=validate.Range(min=1))
    occurred_at = fields.AwareDateTime(required=True, default_timezone=timezone.utc)
    # None for events that are about no merchant in particular (e.g. a login request).
    merchant_id = fields.String(required=True, allow_none=True)
    data = fields.Dict(required=True)


ENVELOPE = EnvelopeSchema()


class EventType:
    """One documented event: its name, its version and the schema of its `data`."""

    def __init__(self, name, data_schema, version=1):
        self.name = name
        self.data_schema = data_schema
        self.version = version

    def envelope(self, merchant_id, data, occurred_at=None):
        """A validated, JSON-ready envelope for `data`."""
        errors = self.data_schema.validate(data)
        if errors:
            raise ValidationFailed(f"Invalid {self.name} event data.", fields=errors)
        envelope = {
            "event_id": uuid.uuid4(),
            "type": self.name,
            "version": self.version,
            "occurred_at": occurred_at or clock.now(),
            "merchant_id": merchant_id,
            "data": self.data_schema.dump(data),
        }
        return ENVELOPE.dump(envelope)


def event_catalog(*event_types):
    """Name → EventType, as each service declares the events it publishes."""
    return {event_type.name: event_type for event_type in event_types}
