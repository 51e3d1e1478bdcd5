import json
import logging

from services.common.logs import ExpectedErrorsWithoutTraceback
from services.common.observability import (
    CorrelationFilter, JsonFormatter, current_correlation_id, valid_correlation_id,
)


def record(message, exc_info=None):
    return logging.LogRecord("svc", logging.WARNING, __file__, 1, message, (), exc_info)


def test_json_lines_carry_the_correlation_id():
    token = current_correlation_id.set("abc123def")
    try:
        entry = record("something happened")
        CorrelationFilter().filter(entry)
    finally:
        current_correlation_id.reset(token)
    line = json.loads(JsonFormatter().format(entry))
    assert line["correlation_id"] == "abc123def"
    assert line["message"] == "something happened" and line["level"] == "WARNING"
    assert line["time"].endswith("Z")


def test_outside_a_worker_the_id_is_a_dash():
    entry = record("boot")
    CorrelationFilter().filter(entry)
    assert entry.correlation_id == "-"


def test_only_plain_short_request_ids_are_trusted():
    assert valid_correlation_id("req-1234abcd") == "req-1234abcd"
    for bad in (None, "short", "x" * 65, "has space", "new\nline", "semi;colon"):
        assert valid_correlation_id(bad) is None


def test_expected_refusals_lose_their_traceback():
    try:
        raise ValueError("no")
    except ValueError:
        import sys

        refused = record("(expected) error handling worker", sys.exc_info())
        fault = record("error handling worker", sys.exc_info())
    ExpectedErrorsWithoutTraceback().filter(refused)
    ExpectedErrorsWithoutTraceback().filter(fault)
    assert refused.exc_info is None and fault.exc_info is not None
