"""Schema loading that answers with a `ValidationFailed` naming every bad field."""
from marshmallow import ValidationError

from services.common.errors import ValidationFailed

NUL = "\x00"


def _nul_fields(value, path=()):
    """Dotted names of the strings in `value` that hold a NUL character, which no
    text field means and PostgreSQL cannot store."""
    if isinstance(value, str):
        return [".".join(path) or "_schema"] if NUL in value else []
    if isinstance(value, dict):
        return [name for key, item in value.items() for name in _nul_fields(item, (*path, str(key)))]
    if isinstance(value, list):
        return [name for index, item in enumerate(value) for name in _nul_fields(item, (*path, str(index)))]
    return []


def load(schema, data):
    """Load `data` with a marshmallow `schema`, or raise ValidationFailed."""
    if not isinstance(data, dict):
        raise ValidationFailed("The body must be a JSON object.", fields={"_schema": ["Expected an object."]})
    with_nul = _nul_fields(data)
    if with_nul:
        raise ValidationFailed(
            f"Invalid input: {', '.join(with_nul)}.", fields={name: ["Contains a NUL character."] for name in with_nul},
        )
    try:
        return schema.load(data)
    except ValidationError as error:
        fields = error.messages if isinstance(error.messages, dict) else {"_schema": error.messages}
        names = ", ".join(sorted(fields))
        raise ValidationFailed(f"Invalid input: {names}.", fields=fields) from None
