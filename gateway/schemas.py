"""Request bodies the gateway accepts, validated before any RPC."""
from marshmallow import RAISE, Schema, fields, validate


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


class LoginLinkRequest(StrictSchema):
    email = fields.Email(required=True, validate=validate.Length(max=254))


class SessionCreateRequest(StrictSchema):
    token = fields.String(required=True, validate=validate.Length(min=20, max=200))
