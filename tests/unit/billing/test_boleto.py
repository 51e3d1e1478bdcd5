"""Boleto arithmetic: check digits, due factor, barcode ↔ linha digitável."""
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.billing.processors import boleto

# Banco do Brasil's published example.
BB_BARCODE = "00193373700000001000500940144816060680935031"
BB_LINE = "00190500954014481606906809350314337370000000100"

banks = st.text(alphabet="0123456789", min_size=3, max_size=3)
free_fields = st.text(alphabet="0123456789", min_size=25, max_size=25)
amounts = st.integers(0, boleto.MAX_AMOUNT_CENTS)
due_dates = st.dates(min_value=date(2000, 7, 3), max_value=date(2070, 12, 31))


# An Itaú boleto's line as printed in a public boleto library's README, and the
# barcode FEBRABAN's layout makes of it: bank, currency, general digit (the line's 33rd),
# due factor and amount (its last 14), then the free field (fields 1-3 without their digits).
ITAU_LINE = "34191670060463564064460910580004739290000307014"
ITAU_BARCODE = "3419" "7" "39290000307014" "16700" "0463564064" "6091058000"


@pytest.mark.parametrize("line, code", [(BB_LINE, BB_BARCODE), (ITAU_LINE, ITAU_BARCODE)])
def test_published_boletos(line, code):
    assert boleto.line_is_valid(line)
    assert boleto.barcode_from_line(line) == code
    assert boleto.line_from_barcode(code) == line
    assert boleto.mod11(code[:4] + code[5:]) == code[4]


def test_the_bb_example_s_amount():
    assert int(BB_LINE[37:]) == 100


@pytest.mark.parametrize("due, factor", [
    (date(2000, 7, 3), 1000), (date(2025, 2, 21), 9999), (date(2025, 2, 22), 1000), (date(2026, 12, 1), 1647),
])
def test_the_due_factor_restarts_at_1000(due, factor):
    assert boleto.due_factor(due) == factor


def test_before_the_first_factor_there_is_none():
    with pytest.raises(ValueError):
        boleto.due_factor(date(2000, 7, 2))


@pytest.mark.parametrize("digits, check", [("001905009", "5"), ("4014481606", "9"), ("0680935031", "4")])
def test_field_check_digits(digits, check):
    assert boleto.mod10(digits) == check


@given(banks, amounts, due_dates, free_fields)
def test_every_built_line_is_valid_and_says_what_was_asked(bank, amount, due, free):
    line = boleto.line_from_barcode(boleto.barcode(bank, amount, due, free))
    assert len(line) == 47 and line.isdigit()
    assert boleto.line_is_valid(line)
    assert int(line[37:]) == amount
    assert boleto.due_date_from_factor(int(line[33:37]), near=due) == due


@given(banks, amounts, due_dates, free_fields, st.data())
def test_a_mistyped_digit_in_the_three_first_fields_is_caught(bank, amount, due, free, data):
    line = boleto.line_from_barcode(boleto.barcode(bank, amount, due, free))
    position = data.draw(st.sampled_from([p for p in range(32)]))
    typo = data.draw(st.sampled_from([d for d in "0123456789" if d != line[position]]))
    assert not boleto.line_is_valid(line[:position] + typo + line[position + 1:])


@given(banks, amounts, due_dates, free_fields)
def test_the_general_digit_guards_amount_and_due_date(bank, amount, due, free):
    code = boleto.barcode(bank, amount, due, free)
    assert boleto.mod11(code[:4] + code[5:]) == code[4]
    assert code[4] != "0"


@given(st.integers(boleto.FACTOR_MIN, boleto.FACTOR_MAX), due_dates)
def test_a_factor_means_the_date_nearest_the_reference(factor, near):
    due = boleto.due_date_from_factor(factor, near)
    assert boleto.due_factor(due) == factor
    span = timedelta(days=boleto.FACTOR_SPAN)
    others = [other for other in (due - span, due + span) if other >= date(2000, 7, 3)]
    assert all(abs((due - near).days) <= abs((other - near).days) for other in others)
