import io
import json
import logging
import time
import weakref

from services.common.logs import BatchedStreamHandler, ExpectedErrorsWithoutTraceback
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


class CountedWrites(io.StringIO):
    def __init__(self):
        super().__init__()
        self.writes = 0

    def write(self, text):
        self.writes += 1
        return super().write(text)


def batched(flush_seconds=30):
    stream = CountedWrites()
    handler = BatchedStreamHandler(stream, flush_seconds=flush_seconds)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    return handler, stream


def info(message):
    return logging.LogRecord("svc", logging.INFO, __file__, 1, message, (), None)


def test_a_burst_of_lines_is_written_at_once_and_a_warning_takes_them_along_in_order():
    handler, stream = batched()
    for number in range(3):
        handler.handle(info(f"worker {number} ok"))
    assert stream.getvalue() == ""
    handler.handle(record("something went wrong"))
    assert stream.getvalue().splitlines() == [
        "INFO worker 0 ok", "INFO worker 1 ok", "INFO worker 2 ok", "WARNING something went wrong"]
    assert stream.writes == 1


def test_a_quiet_process_still_writes_its_last_line_soon():
    handler, stream = batched(flush_seconds=0.05)
    handler.handle(info("the only line"))
    deadline = time.monotonic() + 10
    while not stream.getvalue() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert stream.getvalue() == "INFO the only line\n"


def test_what_is_pending_is_written_when_logging_shuts_down():
    handler, stream = batched()
    handler.handle(info("last words"))
    logging.shutdown([weakref.ref(handler)])
    assert stream.getvalue() == "INFO last words\n"


def test_a_full_batch_is_written_without_waiting():
    handler, stream = batched()
    for number in range(handler.max_lines):
        handler.handle(info(f"line {number}"))
    assert len(stream.getvalue().splitlines()) == handler.max_lines and stream.writes == 1
