"""Logging plumbing referenced by config.yaml's LOGGING section."""
import logging


class ExpectedErrorsWithoutTraceback(logging.Filter):
    """Business refusals (a wrong link, another buyer's order) are not faults: nameko
    logs them as "(expected) error ..."; keep the line, drop the traceback."""

    def filter(self, record):
        if isinstance(record.msg, str) and record.msg.startswith("(expected)"):
            record.exc_info = None
            record.exc_text = None
        return True
