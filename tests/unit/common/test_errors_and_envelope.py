import uuid

import pytest
from marshmallow import Schema, fields
from nameko.exceptions import deserialize, serialize

from services.common import errors
from services.common.envelope import ENVELOPE, EventType
from services.common.validation import load


@pytest.mark.parametrize("error_class", [
    errors.ValidationFailed, errors.Unauthorized, errors.Forbidden, errors.NotFound,
    errors.Conflict, errors.RuleRefused, errors.TooManyRequests, errors.ServiceUnavailable,
])
def test_errors_cross_rpc_as_the_same_class(error_class):
    original = error_class("Mensagem clara.", code="specific_code", fields={"email": ["bad"]})
    copy = deserialize(serialize(original))
    assert type(copy) is error_class
    assert copy.to_dict() == {"code": "specific_code", "message": "Mensagem clara.", "fields": {"email": ["bad"]}}


def test_error_code_defaults_to_the_class_code():
    assert errors.NotFound("x").code == "not_found"
    assert str(errors.NotFound("Pedido não encontrado.")) == "Pedido não encontrado."


class PingSchema(Schema):
    email = fields.Email(required=True)
    count = fields.Integer(required=True)


def test_load_names_every_bad_field():
    with pytest.raises(errors.ValidationFailed) as caught:
        load(PingSchema(), {"email": "not-an-email"})
    assert set(caught.value.fields) == {"email", "count"}


def test_load_refuses_a_body_that_is_not_an_object():
    with pytest.raises(errors.ValidationFailed) as caught:
        load(PingSchema(), ["a", "list"])
    assert "_schema" in caught.value.fields


def test_envelope_has_the_documented_keys_and_validates_data():
    pinged = EventType("pinged", PingSchema())
    envelope = pinged.envelope("acme", {"email": "ana@example.com", "count": 2})
    assert set(envelope) == {"event_id", "type", "version", "occurred_at", "merchant_id", "data"}
    assert uuid.UUID(envelope["event_id"])
    assert envelope["occurred_at"].endswith("+00:00")
    assert ENVELOPE.validate(envelope) == {}
    with pytest.raises(errors.ValidationFailed):
        pinged.envelope("acme", {"email": "ana@example.com"})
