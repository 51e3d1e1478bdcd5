"""Boleto arithmetic (FEBRABAN): the 44-digit barcode, its 47-digit linha digitável,
their check digits and the due factor. Pure functions, no processor state.

Barcode: bank (3) · currency (1) · general check digit (1) · due factor (4) ·
amount in cents (10) · free field (25, the bank's own). The line regroups it into
three fields with a mod-10 check digit each, the general digit, then factor + amount.
"""
from datetime import date, timedelta

CURRENCY_REAL = "9"
FACTOR_BASE = date(1997, 10, 7)
# The factor ran out at 9999 (21/02/2025); from 22/02/2025 it counts again from 1000.
FACTOR_MIN, FACTOR_MAX = 1000, 9999
FACTOR_SPAN = FACTOR_MAX - FACTOR_MIN + 1
MAX_AMOUNT_CENTS = 10**10 - 1
FREE_FIELD_DIGITS = 25


def mod10(digits):
    """The check digit of one line field: weights 2,1,2,… from the right, digits of
    each product summed."""
    total = 0
    for position, digit in enumerate(reversed(digits)):
        product = int(digit) * (2 if position % 2 == 0 else 1)
        total += product // 10 + product % 10
    return str((10 - total % 10) % 10)


def mod11(digits):
    """The barcode's general check digit: weights 2..9 from the right; 0, 10 and 11
    become 1."""
    total = sum(int(digit) * (2 + position % 8) for position, digit in enumerate(reversed(digits)))
    check = 11 - total % 11
    return "1" if check in (0, 10, 11) else str(check)


def due_factor(due_date):
    """Days from 07/10/1997, restarting at 1000 after each 9999."""
    days = (due_date - FACTOR_BASE).days
    if days < FACTOR_MIN:
        raise ValueError("A boleto cannot be due before 03/07/2000.")
    return (days - FACTOR_MIN) % FACTOR_SPAN + FACTOR_MIN


def due_date_from_factor(factor, near):
    """The due date a factor stands for: of the dates it may mean (one per 9000 days),
    the one closest to `near`."""
    first = FACTOR_BASE + timedelta(days=factor)
    cycles = round(((near - first).days) / FACTOR_SPAN)
    return first + timedelta(days=max(cycles, 0) * FACTOR_SPAN)


def barcode(bank, amount_cents, due_date, free_field):
    """The 44 digits of the barcode."""
    if not (len(bank) == 3 and bank.isdigit()):
        raise ValueError("The bank code has 3 digits.")
    if not (len(free_field) == FREE_FIELD_DIGITS and free_field.isdigit()):
        raise ValueError(f"The free field has {FREE_FIELD_DIGITS} digits.")
    if not 0 <= amount_cents <= MAX_AMOUNT_CENTS:
        raise ValueError("The amount does not fit a boleto.")
    tail = f"{due_factor(due_date):04d}{amount_cents:010d}{free_field}"
    return bank + CURRENCY_REAL + mod11(bank + CURRENCY_REAL + tail) + tail


def line_from_barcode(code):
    """The linha digitável (47 digits) of a 44-digit barcode."""
    head, free = code[:4], code[19:]
    fields = (head + free[:5], free[5:15], free[15:25])
    return "".join(field + mod10(field) for field in fields) + code[4] + code[5:19]


def barcode_from_line(line):
    """The 44-digit barcode a linha digitável encodes (check digits not verified)."""
    return line[:4] + line[32] + line[33:47] + line[4:9] + line[10:20] + line[21:31]


def line_is_valid(line):
    """Every check digit of a 47-digit line is right."""
    if not (len(line) == 47 and line.isdigit()):
        return False
    fields = ((line[0:9], line[9]), (line[10:20], line[20]), (line[21:31], line[31]))
    if any(mod10(body) != check for body, check in fields):
        return False
    code = barcode_from_line(line)
    return mod11(code[:4] + code[5:]) == code[4]

