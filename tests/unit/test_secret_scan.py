"""The session's card-data scan (support/secret_scan.py) finds what is planted, and a
session whose tests wrote a card number fails.

Everything planted here lives in folders outside this session's basetemp, removed at
the end, so the real scan of this session does not find it."""
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import importlib

import pytest
from marshmallow import Schema, fields
from sqlalchemy import Column, MetaData, String, Table

from services.common.config import REPO_ROOT
from services.common.envelope import EnvelopeSchema
from services.common.migrations import SERVICES_WITH_DATABASE
from support import secret_scan

PLANTED = "4242424242424242"
# Luhn-valid with a Mastercard prefix, and in no test card list.
UNLISTED = "5105105105105100"
# A card-entry ticket as billing issues it (secrets.token_urlsafe of TICKET_BYTES).
TICKET = "hJ3k-_9xQ2vLmN0pRsTuVwXyZaBcDeFgHiJkLmNoPqR"


@pytest.fixture
def outside():
    folder = Path(tempfile.mkdtemp(prefix="secret-scan-"))
    yield folder
    shutil.rmtree(folder)


@pytest.mark.parametrize("text", [
    f"charge ok card={PLANTED}", "4242 4242 4242 4242", "4000-0000-0000-0119", f"tok_{UNLISTED}",
    f'{{"pan": "{UNLISTED}"}}', "378282246310005 (amex, 15 digits)",
])
def test_a_card_number_is_found(text):
    assert secret_scan.card_numbers_in(text)


@pytest.mark.parametrize("text, prefix, middle", [
    ("access_token: $aact_hmlg_000MzkwODA2MWY2OGM3MWRlMDU2NWM3MzJlNzZmNGZhZGY6OjA", "$aact_", "MzkwODA2"),
    ('{"api_key": "$aact_prod_000MzkwODA2MWY2OGM3MWRlMDU2NWM3MzJlNzZmNGZhZGY6OjE"}', "$aact_", "MzkwODA2"),
    ("Authorization: Bearer APP_USR-1234567890123456-120705-0f7b1a2c3d4e5f60718293a4b5c6d7e8-123456789",
     "APP_USR-", "0f7b1a2c"),
    ('{"api_key": "TEST-1234567890123456-120705-0f7b1a2c3d4e5f60718293a4b5c6d7e8-987654321"}', "TEST-", "0f7b1a2c"),
])
def test_an_asaas_key_or_mercado_pago_token_is_found_and_reported_by_its_last_four_only(text, prefix, middle):
    [problem] = secret_scan.problems_in_text(text)
    assert problem.startswith(f"processor API key {prefix}") and middle not in problem
    assert secret_scan._problems_in_value(text)


@pytest.mark.parametrize("number", ["4444 4444 4444 4444", "5184019740373151", "4916561358240741",
                                    "5031 4332 1540 6351", "3753 651535 56885", "5067766783888311"])
def test_processors_sandbox_cards_are_found(number):
    assert secret_scan.card_numbers_in(f"card {number}")


@pytest.mark.parametrize("text", [
    "5105105105105101",  # fails the Luhn check
    "1234567890123452",  # Luhn-valid, but no issuer starts with 1
    f"9{UNLISTED}000",  # inside a longer digit string (a boleto line, a barcode)
    f"a1{UNLISTED}ff",  # inside a hexadecimal hash
    "PED-4242ABCD at 2026-12-02T00:35:48.363859+00:00, 1764635748363",
])
def test_what_is_not_a_card_number(text):
    assert secret_scan.card_numbers_in(text) == []


@pytest.mark.parametrize("text, found", [
    ('{"card_number": "x"}', True), ("cvv=123", True), ("'card_cvc': 1", True), ("security_code: 7", True),
    ("the card form asks for a CVV", False), ("cvv", False),
])
def test_a_card_field_in_text_is_one_used_as_a_key(text, found):
    assert bool(secret_scan.problems_in_text(text)) is found


@pytest.mark.parametrize("text", [
    f"GET /card?ticket={TICKET} HTTP/1.1", f'{{"ticket": "{TICKET}", "expires_at": null}}',
    f"{{'card_entry_ticket': '{TICKET}'}}", f"next=%2Fcard%3Fticket%3D{TICKET}",
])
def test_a_card_entry_ticket_is_found(text):
    assert secret_scan.problems_in_text(text) == [f"card-entry ticket {TICKET[:6]}…"]


@pytest.mark.parametrize("text", [
    f"ticket_digest={'ab' * 32}",  # what billing keeps of it
    f"ticket={TICKET}x", f"ticket={TICKET[:-1]}",  # another length
    f"/entrar?token={TICKET}", f"session {TICKET}",  # a token of that format not given as a ticket
])
def test_what_is_not_a_card_entry_ticket(text):
    assert secret_scan.problems_in_text(text) == []


def test_a_database_is_scanned_by_column_name_value_and_json_key(outside):
    path = outside / "billing.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE orders (id TEXT, payload TEXT)")
        connection.execute("CREATE TABLE cards (id TEXT, card_number TEXT)")
        connection.execute("INSERT INTO orders VALUES ('a', ?)", (f"paid with {UNLISTED}",))
        connection.execute("INSERT INTO orders VALUES ('b', ?)", ('{"data": {"cvv": "123"}}',))
        connection.execute("CREATE TABLE requests (id TEXT, ticket TEXT, response JSON)")
        connection.execute("INSERT INTO requests VALUES ('c', ?, ?)", (TICKET, f'{{"link": "/card?ticket={TICKET}"}}'))
        connection.execute("INSERT INTO requests VALUES ('d', ?, ?)", (TICKET[::-1], f'{{"ticket": "{TICKET}"}}'))
    connection.close()

    problems = secret_scan.scan_file(path)

    assert any("column cards.card_number" in problem for problem in problems)
    assert any(f"orders.payload: card number {UNLISTED}" in problem for problem in problems)
    assert any("orders.payload: card field cvv" in problem for problem in problems)
    found = f"card-entry ticket {TICKET[:6]}…"
    assert [problem.split(": ", 1)[1] for problem in problems if "requests." in problem] == [
        f"requests.ticket: {found}", f"requests.response: {found}",
        f"requests.ticket: card-entry ticket {TICKET[::-1][:6]}…", f"requests.response: {found}",
    ]


def test_a_log_and_an_e_mail_are_scanned_but_not_mime_boundaries(outside):
    (outside / "service.log").write_text(f"INFO charging {PLANTED}\n")
    (outside / "clean.eml").write_bytes(
        b'Content-Type: multipart/alternative; boundary="===============4547558082613378504=="\r\n'
        b"Subject: Recibo\r\n\r\n--===============4547558082613378504==\r\n"
        b"Content-Type: text/plain\r\n\r\nObrigado.\r\n--===============4547558082613378504==--\r\n"
    )
    problems = secret_scan.scan_tree(outside)
    assert problems == [f"{outside / 'service.log'}: card number {PLANTED}"]


def test_a_file_that_cannot_be_read_is_a_finding(outside):
    (outside / "broken.db").write_bytes(b"SQLite format 3\x00" + b"\x00" * 10)
    [problem] = secret_scan.scan_tree(outside)
    assert problem.startswith(f"{outside / 'broken.db'}: could not be scanned")


def run_session(folder, test_source):
    """A pytest session of its own, with the scan, in `folder`: (exit code, output)."""
    (folder / "conftest.py").write_text('pytest_plugins = ["support.secret_scan"]\n')
    (folder / "test_planted.py").write_text(textwrap.dedent(test_source))
    finished = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--basetemp", str(folder / "tmp"),
         "--rootdir", str(folder), str(folder)],
        cwd=folder, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{REPO_ROOT / 'tests'}:{REPO_ROOT}"},
    )
    return finished.returncode, finished.stdout + finished.stderr


def test_a_session_that_wrote_a_card_number_fails(outside):
    code, output = run_session(outside, f"""
        import logging

        def test_writes_a_log(tmp_path):
            (tmp_path / "billing.log").write_text("charged card {PLANTED[:8]}" + "{PLANTED[8:]}")

        def test_logs_a_record():
            logging.getLogger("billing").warning("card %s", "{UNLISTED}")

        def test_logs_a_card_entry_link():
            logging.getLogger("gateway").warning("GET /card?ticket=%s", "{TICKET}")
    """)
    assert code == pytest.ExitCode.TESTS_FAILED, output
    assert "3 passed" in output
    assert "card data found in what the tests wrote" in output
    assert f"billing.log: card number {PLANTED}" in output
    assert f"log record billing ('billing WARNING card {UNLISTED}'): card number {UNLISTED}" in output
    assert f"log record gateway ('gateway WARNING GET /card?ticket={TICKET}'): card-entry ticket {TICKET[:6]}…" in output


def test_this_suite_runs_the_scan(pytestconfig):
    assert pytestconfig.pluginmanager.get_plugin("support.secret_scan") is secret_scan


def test_a_clean_session_passes(outside):
    code, output = run_session(outside, """
        def test_writes_a_log(tmp_path):
            (tmp_path / "billing.log").write_text("charged card visa final 4242")
    """)
    assert code == pytest.ExitCode.OK, output
    assert "card data found" not in output


@pytest.mark.parametrize("service", SERVICES_WITH_DATABASE)
def test_no_model_or_event_of_a_service_has_a_card_field(service):
    models = importlib.import_module(f"services.{service}.models")
    events = importlib.import_module(f"services.{service}.service").EVENTS
    assert models.Base.metadata.tables and events
    assert secret_scan.card_columns_of_metadata(models.Base.metadata) == []
    for name, event_type in events.items():
        assert secret_scan.card_fields_of_schema(event_type.data_schema) == [], name
    assert secret_scan.card_fields_of_schema(EnvelopeSchema()) == []


def test_the_field_check_finds_a_planted_column_and_a_nested_field():
    metadata = MetaData()
    Table("orders", metadata, Column("id", String, primary_key=True), Column("card_cvv", String))

    class Card(Schema):
        number = fields.String()
        cardNumber = fields.String()

    class Event(Schema):
        order_id = fields.String()
        cards = fields.List(fields.Nested(Card))
        extra = fields.Dict(values=fields.Nested(Card))
        cvc = fields.String()

    assert secret_scan.card_columns_of_metadata(metadata) == ["orders.card_cvv"]
    assert secret_scan.card_fields_of_schema(Event()) == ["cards.cardNumber", "extra.cardNumber", "cvc"]
