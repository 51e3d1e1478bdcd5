"""Schema loading that answers with a `ValidationFailed` naming every bad field."""
from marshmallow import ValidationError

from services.common.errors import ValidationFailed


def load(schema, data):
    """Load `data` with a marshmallow `schema`, or raise ValidationFailed."""
    if not isinstance(data, dict):
        raise ValidationFailed("The body must be a JSON object.", fields={"_schema": ["Expected an object."]})
    try:
        return schema.load(data)
    except ValidationError as error:
        fields = error.messages if isinstance(error.messages, dict) else {"_schema": error.messages}
        names = ", ".join(sorted(fields))
        raise ValidationFailed(f"Invalid input: {names}.", fields=fields) from None
