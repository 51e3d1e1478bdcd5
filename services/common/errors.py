"""Typed errors that cross RPC intact.

A service raises one of these for a business refusal; nameko serializes it, and the
caller (gateway, another service, portalctl) gets the same class back, because each
is registered with nameko's deserialization registry. The gateway maps each class to
an HTTP status in one table (gateway/errors.py).
"""
from nameko.exceptions import deserialize_to_instance


class PortalError(Exception):
    """A refusal with a stable machine-readable `code` and the fields it concerns."""

    code = "error"

    def __init__(self, message, code=None, fields=None):
        super().__init__(message, code or self.code, fields or {})
        self.message = message
        self.code = code or self.code
        self.fields = fields or {}

    def __str__(self):
        return self.message

    def to_dict(self):
        return {"code": self.code, "message": self.message, "fields": self.fields}


@deserialize_to_instance
class ValidationFailed(PortalError):
    code = "validation_error"


@deserialize_to_instance
class Unauthorized(PortalError):
    code = "unauthorized"


@deserialize_to_instance
class Forbidden(PortalError):
    code = "forbidden"


@deserialize_to_instance
class NotFound(PortalError):
    code = "not_found"


@deserialize_to_instance
class Conflict(PortalError):
    code = "conflict"


@deserialize_to_instance
class RuleRefused(PortalError):
    code = "rule_refused"


@deserialize_to_instance
class TooManyRequests(PortalError):
    code = "too_many_requests"


@deserialize_to_instance
class ServiceUnavailable(PortalError):
    code = "service_unavailable"


# Business refusals: entrypoints list them as expected so they are not logged as faults.
EXPECTED_ERRORS = (
    ValidationFailed, Unauthorized, Forbidden, NotFound, Conflict, RuleRefused,
    TooManyRequests,
)
