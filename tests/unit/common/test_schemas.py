"""The identity contract and the field types the services' schemas share."""
from datetime import datetime, timezone

import pytest
from marshmallow import Schema, fields

from services.common.errors import ValidationFailed
from services.common.schemas import IdentitySchema, LowerEmail, UtcIsoDateTime, slug
from services.common.validation import load


class Fields(Schema):
    email = LowerEmail()
    at = UtcIsoDateTime()
    name = fields.String(validate=slug)


def test_an_identity_needs_an_email_and_a_merchant_scope_or_none():
    assert load(IdentitySchema(), {"email": "ANA@example.com", "merchant_id": None, "session_id": "s"})["email"] == "ana@example.com"
    assert set(IdentitySchema().validate({"email": "nope"})) == {"email", "merchant_id", "session_id"}


def test_a_merchant_scope_is_a_merchants_id():
    """Never empty: "" stands for the unscoped session where subscriptions keeps
    Idempotency-Keys by scope (domain.request_owner)."""
    for scope in ("", "Acme Cursos"):
        identity = {"email": "ana@example.com", "merchant_id": scope, "session_id": "s"}
        assert set(IdentitySchema().validate(identity)) == {"merchant_id"}


def test_an_identity_dumps_as_the_gateway_receives_it():
    identity = {"session_id": "s", "email": "ana@example.com", "merchant_id": None}
    assert IdentitySchema().dump(identity) == identity


@pytest.mark.parametrize("email", ["ana@localhost", "ana@example.123", "ana@café.com.br"])
def test_an_email_no_login_link_could_reach_is_refused(email):
    assert set(Fields().validate({"email": email})) == {"email"}


def test_times_are_kept_in_utc():
    loaded = load(Fields(), {"email": "Ana@Example.com", "at": "2026-11-10T12:30:00-03:00"})
    assert loaded == {"email": "ana@example.com", "at": datetime(2026, 11, 10, 15, 30, tzinfo=timezone.utc)}
    assert set(Fields().validate({"at": "2026-11-10T12:30:00"})) == {"at"}


@pytest.mark.parametrize("name, valid", [
    ("acme-cursos", True), ("a1", True), ("Acme", False), ("-acme", False), ("acme--cursos", False), ("", False),
])
def test_slugs_are_lower_case_words_joined_by_dashes(name, valid):
    assert ("name" not in Fields().validate({"name": name})) == valid


def test_a_nul_character_anywhere_is_refused_naming_the_field():
    class Body(Schema):
        name = fields.String()
        tags = fields.List(fields.String())
        address = fields.Dict()

    with pytest.raises(ValidationFailed) as refused:
        load(Body(), {"name": "ok", "tags": ["a", "b\x00"], "address": {"city": "x\x00y"}})
    assert set(refused.value.fields) == {"tags.1", "address.city"}
    assert load(Body(), {"name": "ok"}) == {"name": "ok"}
