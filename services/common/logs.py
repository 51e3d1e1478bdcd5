"""Logging plumbing referenced by config.yaml's LOGGING section, and by the HTTP servers."""
import logging
import re


class ExpectedErrorsWithoutTraceback(logging.Filter):
    """Business refusals (a wrong link, another buyer's order) are not faults: nameko
    logs them as "(expected) error ..."; keep the line, drop the traceback."""

    def filter(self, record):
        if isinstance(record.msg, str) and record.msg.startswith("(expected)"):
            record.exc_info = None
            record.exc_text = None
        return True


class WithoutUrlSecrets(logging.Filter):
    """Access-log lines name each request's URL, and a login link or an SSO ticket
    carries its secret in the URL: keep the line, without the query string and
    without any path segment long and random enough to be a token."""

    _QUERY = re.compile(r"\?[^\s\"]*")
    _TOKEN_SEGMENT = re.compile(r"/[A-Za-z0-9_-]{32,}(?=[/\s\"]|$)")

    def filter(self, record):
        message = record.getMessage()
        redacted = self._TOKEN_SEGMENT.sub("/[redacted]", self._QUERY.sub("?[redacted]", message))
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


class WithoutRpcReplyBodies(logging.Filter):
    """nameko logs every RPC reply's whole body at DEBUG, and replies may carry secrets
    (a new session's token, a new API key): keep the line, not the body."""

    REPLY_LINE = "RPC reply event complete %s %s"

    def filter(self, record):
        if record.msg == self.REPLY_LINE and isinstance(record.args, tuple) and len(record.args) == 2:
            record.args = (record.args[0], "[body not logged]")
        return True
