"""Card checks billing makes before any card reaches the processor."""
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.billing import domain

TODAY = date(2026, 11, 26)
SANDBOX_TEST_CARDS = ["4242424242424242", "4000000000000002", "4000000000000119", "4000000000009995"]

payloads = st.text(alphabet="0123456789", min_size=12, max_size=18)


def with_check_digit(payload):
    return next(payload + digit for digit in "0123456789" if domain.luhn_is_valid(payload + digit))


class TestLuhn:
    @pytest.mark.parametrize("number", SANDBOX_TEST_CARDS + ["5555555555554444", "378282246310005", "6362970000457013"])
    def test_published_test_cards_pass(self, number):
        assert domain.luhn_is_valid(number)

    @pytest.mark.parametrize("number", ["4242424242424241", "1234567812345678", "", "4242 4242", "42424242424242a2"])
    def test_others_fail(self, number):
        assert not domain.luhn_is_valid(number)

    @given(payloads)
    def test_exactly_one_check_digit_completes_any_number(self, payload):
        assert sum(domain.luhn_is_valid(payload + digit) for digit in "0123456789") == 1

    @given(payloads, st.data())
    def test_any_single_mistyped_digit_is_caught(self, payload, data):
        number = with_check_digit(payload)
        position = data.draw(st.integers(0, len(number) - 1))
        typo = data.draw(st.sampled_from([d for d in "0123456789" if d != number[position]]))
        assert not domain.luhn_is_valid(number[:position] + typo + number[position + 1:])

    @given(payloads, st.data())
    def test_swapped_neighbours_are_caught_except_09(self, payload, data):
        number = with_check_digit(payload)
        position = data.draw(st.integers(0, len(number) - 2))
        pair = number[position:position + 2]
        swapped = number[:position] + pair[::-1] + number[position + 2:]
        if pair[0] != pair[1] and pair not in ("09", "90"):
            assert not domain.luhn_is_valid(swapped)


class TestBrands:
    @pytest.mark.parametrize("number, brand", [
        ("4242424242424242", "visa"), ("5555555555554444", "mastercard"), ("2223003122003222", "mastercard"),
        ("378282246310005", "amex"), ("36227206271667", "diners"), ("6011111111111117", "discover"),
        ("3566002020360505", "jcb"), ("6362970000457013", "elo"), ("5067230000000000", "elo"),
        ("6062825624254001", "hipercard"), ("9999999999999995", None),
    ])
    def test_by_issuer_prefix(self, number, brand):
        assert domain.card_brand(number) == brand


class TestExpiry:
    @pytest.mark.parametrize("raw, expected", [
        ("11/26", (11, 2026)), ("1/27", (1, 2027)), (" 08 / 30 ", (8, 2030)), ("12/2030", (12, 2030)),
    ])
    def test_this_month_or_later(self, raw, expected):
        assert domain.parse_expiry(raw, TODAY) == expected

    @pytest.mark.parametrize("raw, reason", [
        ("10/26", "vencido"), ("13/27", "mês"), ("00/27", "mês"), ("1127", "MM/AA"), ("", "MM/AA"),
        (None, "MM/AA"), ("01/2047", "ano"),
    ])
    def test_anything_else_says_why(self, raw, reason):
        with pytest.raises(ValueError, match=reason):
            domain.parse_expiry(raw, TODAY)


class TestCardProblems:
    def test_a_good_card_has_none(self):
        assert domain.card_problems("4242424242424242", "08/30", "123", "ANA SOUZA", TODAY) == {}
        assert domain.card_problems("378282246310005", "08/30", "1234", "ANA SOUZA", TODAY) == {}

    def test_each_bad_field_is_named(self):
        problems = domain.card_problems("4242424242424241", "08/20", "12", " ", TODAY)
        assert set(problems) == {"number", "expiry", "security_code", "holder_name"}

    @pytest.mark.parametrize("number", ["4242", "42424242424242424242", "9999999999999995"])
    def test_short_long_or_brandless_numbers(self, number):
        assert set(domain.card_problems(number, "08/30", "123", "ANA", TODAY)) == {"number"}

    def test_what_people_type_between_digits_is_ignored(self):
        assert domain.digits_only(" 4242 4242-4242 4242 ") == "4242424242424242"

    def test_problems_never_repeat_the_number_or_code(self):
        problems = domain.card_problems("4242424242424241", "08/30", "98765", "ANA", TODAY)
        assert "4242424242424241" not in repr(problems) and "98765" not in repr(problems)
