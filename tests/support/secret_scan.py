"""The suite's proof that no card data is kept: a pytest plugin that, at the end of the
session, has looked at every database and every log the tests wrote and fails the run
if it found a sandbox test card number (ours, Asaas's or Mercado Pago's), any Luhn-valid 13–19 digit
run with a card issuer's prefix, a column, key or field named like a card number or
its CVV, a card-entry ticket (the live secret of billing's card form link), an Asaas
API key (`$aact_…`) or a Mercado Pago access token (`APP_USR-…`) in clear.

What it looks at:
- every file under the session's basetemp (`tmp_path`): SQLite databases row by row,
  their journals, logs, e-mails the sinks kept;
- every PostgreSQL database the tests create, just before `support.databases` drops it;
- every log record the test process emits (nameko containers run in it).
"""
import email
import email.policy
import json
import logging
import math
import re
from pathlib import Path

import pytest
from marshmallow import fields
from sqlalchemy import MetaData, select

from devtools.fake_asaas import APPROVED_TEST_CARD, REFUSED_CARDS
from devtools.fake_mercadopago import TEST_CARDS as MERCADOPAGO_TEST_CARDS
from services.billing.card_entry import TICKET_BYTES
from services.billing.domain import card_brand, luhn_is_valid
from services.billing.processors.sandbox import TEST_CARDS
from services.common.db import make_engine

SANDBOX_TEST_CARDS = ("4242424242424242", *TEST_CARDS, "5555555555554444", APPROVED_TEST_CARD, *REFUSED_CARDS,
                      *MERCADOPAGO_TEST_CARDS)
FORBIDDEN_NAME = re.compile(r"(?<![a-z])(cvv2?|cvc2?)(?![a-z])|card_?number|security_code|(?<![a-z])pan(?![a-z])", re.I)
# In text, a name counts when it is used as a key: `cvv=…`, `"cvv": …`, `'cvv': …`.
FORBIDDEN_KEY_IN_TEXT = re.compile(
    r"""["']?\b[a-z_]*(?:cvv2?|cvc2?|card_?number|security_code)["']?\s*[:=]""", re.I)
DIGIT_RUN = re.compile(r"(?<!\d)\d{13,19}(?!\d)")
HEX_WORD = re.compile(r"[0-9A-Fa-f]+")
SEPARATORS = re.compile(r"[ \-.]")
SQLITE_HEADER = b"SQLite format 3\x00"
# billing's card-entry ticket: TICKET_BYTES random bytes in URL-safe base64, unpadded.
TICKET_LENGTH = math.ceil(TICKET_BYTES * 4 / 3)
TICKET = re.compile(rf"[A-Za-z0-9_-]{{{TICKET_LENGTH}}}")
# The format alone is any random token's: a ticket counts where it is given as one, as
# the card form's `ticket=` parameter (also URL-encoded) or a `ticket` key or column.
TICKET_IN_TEXT = re.compile(
    rf"""ticket["']?\s*(?:[:=]|%3D)\s*["']?({TICKET.pattern})(?![A-Za-z0-9_-])""", re.I)

# A processor credential in clear: an Asaas API key or a Mercado Pago access token
# (`APP_USR-<client id>-<MMddHH>-<hash>-<user id>`, `TEST-…` for older test ones);
# billing keeps them sealed.
PROCESSOR_KEY = re.compile(r"\$aact_(?:hmlg|prod)_[A-Za-z0-9+/=_:.-]{8,}|(?:APP_USR|TEST)-\d{6,}-\d{6}-[0-9a-f]{16,}-\d{4,}")

# What this session found, as "where: what" lines.
findings = []


def card_numbers_in(text):
    """Card numbers in `text`: the sandbox's test cards (also written in groups) and any
    Luhn-valid 13–19 digit run with an issuer's prefix that is not part of a longer
    digit string, nor of a longer hexadecimal word (a hash or a random hex id)."""
    found = [number for number in SANDBOX_TEST_CARDS if number in text or number in SEPARATORS.sub("", text)]
    for match in DIGIT_RUN.finditer(text):
        run = match.group()
        if run in found or _inside_hex_word(text, match) or not (luhn_is_valid(run) and card_brand(run)):
            continue
        found.append(run)
    return found


def _inside_hex_word(text, match):
    start, end = match.span()
    while start > 0 and text[start - 1].isalnum():
        start -= 1
    while end < len(text) and text[end].isalnum():
        end += 1
    word = text[start:end]
    return len(word) > len(match.group()) and HEX_WORD.fullmatch(word) is not None


def tickets_in(text, name=""):
    """Card-entry tickets in `text`: given as `ticket=…` or `"ticket": …`, or all of
    the text when it is the value of a key or column `name`d like a ticket."""
    found = TICKET_IN_TEXT.findall(text)
    if "ticket" in name.lower() and TICKET.fullmatch(text):
        found.append(text)
    return found


def processor_keys_in(text):
    """Asaas API keys (`$aact_hmlg_…` in its sandbox, `$aact_prod_…` in production) and
    Mercado Pago access tokens (`APP_USR-…`, `TEST-…`)."""
    return PROCESSOR_KEY.findall(text)


def _key_problem(key):
    # The prefix and last four, as billing itself shows a key.
    return f"processor API key {key[:11]}…{key[-4:]}"


def _ticket_problem(ticket):
    # Enough of the secret to find it, not enough to use it.
    return f"card-entry ticket {ticket[:6]}…"


def problems_in_text(text):
    """What is wrong with a piece of text (a log, an e-mail, a stored value)."""
    problems = [f"card number {number}" for number in card_numbers_in(text)]
    problems += [f"card field {match.group().strip()}" for match in FORBIDDEN_KEY_IN_TEXT.finditer(text)]
    problems += [_ticket_problem(ticket) for ticket in tickets_in(text)]
    problems += [_key_problem(key) for key in processor_keys_in(text)]
    return problems


def _problems_in_value(value, name=""):
    """What is wrong with a stored value (JSON walked key by key), kept under `name`."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str) and value[:1] in "{[":
        try:
            value = json.loads(value)
        except ValueError:
            pass
    if isinstance(value, dict):
        return [problem for key, item in value.items()
                for problem in ([f"card field {key}"] if FORBIDDEN_NAME.search(str(key)) else [])
                + _problems_in_value(item, str(key))]
    if isinstance(value, list):
        return [problem for item in value for problem in _problems_in_value(item, name)]
    if value is None:
        return []
    text = str(value)
    return ([f"card number {number}" for number in card_numbers_in(text)]
            + [_ticket_problem(ticket) for ticket in tickets_in(text, name)]
            + [_key_problem(key) for key in processor_keys_in(text)])


def scan_database(url):
    """Every table, column name and value of the database at `url`: problems as "where: what"."""
    engine = make_engine(url)
    metadata = MetaData()
    try:
        metadata.reflect(engine)
        problems = [f"column {column}" for column in card_columns_of_metadata(metadata)]
        with engine.connect() as connection:
            for table in metadata.sorted_tables:
                for row in connection.execute(select(table)):
                    for column, value in zip(table.columns, row):
                        problems += [f"{table.name}.{column.name}: {problem}"
                                     for problem in _problems_in_value(value, column.name)]
        return problems
    finally:
        engine.dispose()


def scan_file(path):
    """A database file, row by row, or any other file (logs, e-mails, journals) as text."""
    path = Path(path)
    content = path.read_bytes()
    text = content.decode("utf-8", "replace")
    if content.startswith(SQLITE_HEADER):
        return [f"{path}: {problem}" for problem in scan_database(f"sqlite:///{path}")]
    if path.suffix == ".eml":
        text = _readable_email(content)
    return [f"{path}: {problem}" for problem in problems_in_text(text)]


def _readable_email(content):
    """An e-mail as its reader sees it: headers and decoded parts, without the random
    19-digit MIME boundaries that would pass for card numbers."""
    message = email.message_from_bytes(content, policy=email.policy.default)
    headers = [f"{name}: {value}" for name, value in message.items() if name.lower() != "content-type"]
    parts = [part.get_content() for part in message.walk() if not part.is_multipart()]
    return "\n".join(headers + [part if isinstance(part, str) else "" for part in parts])


def scan_tree(folder):
    problems = []
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file():
            try:
                problems += scan_file(path)
            except Exception as error:  # what cannot be read cannot be cleared either
                problems.append(f"{path}: could not be scanned ({error})")
    return problems


def card_fields_of_schema(schema, prefix=""):
    """Fields of a marshmallow schema, nested ones included, named like card data."""
    found = []
    for name, field in schema.fields.items():
        path = f"{prefix}{name}"
        if FORBIDDEN_NAME.search(name):
            found.append(path)
        for inner in (field, getattr(field, "inner", None), getattr(field, "value_field", None)):
            if isinstance(inner, fields.Nested):
                found += card_fields_of_schema(inner.schema, f"{path}.")
    return found


def card_columns_of_metadata(metadata):
    return [f"{table.name}.{column.name}" for table in metadata.sorted_tables
            for column in table.columns if FORBIDDEN_NAME.search(column.name)]


def record(problems):
    findings.extend(problems)


class LogScanner(logging.Handler):
    """Scans every record the process emits, as its handlers would write it."""

    def __init__(self):
        super().__init__(level=logging.NOTSET)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record):
        try:
            text = self.format(record)
        except Exception:  # a record that cannot be formatted is written by no handler either
            return
        record_problems = problems_in_text(text)
        if record_problems:
            findings.extend(f"log record {record.name} ({text[:200]!r}): {problem}" for problem in record_problems)


_log_scanner = LogScanner()


def pytest_configure(config):
    logging.getLogger().addHandler(_log_scanner)


def pytest_unconfigure(config):
    logging.getLogger().removeHandler(_log_scanner)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session, exitstatus):
    """Before pytest tidies its temporary folders: scan them, and fail the run on a finding."""
    basetemp = session.config._tmp_path_factory._basetemp
    if basetemp is not None and basetemp.is_dir():
        record(scan_tree(basetemp))
    if not findings:
        return
    writer = session.config.get_terminal_writer()
    writer.line()
    writer.sep("=", "card data found in what the tests wrote", red=True)
    for problem in findings:
        writer.line(problem, red=True)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
