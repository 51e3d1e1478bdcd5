"""Brazilian taxpayer ids: a CPF (11 digits) or a CNPJ (14 characters), each ending in
two check digits (modulo 11). Since July 2026 a CNPJ's first 12 characters may be
letters too (IN RFB 2.229/2024): each character counts as its ASCII code − 48, which
for a digit is the digit itself."""
import re

SEPARATORS = re.compile(r"[.\-/\s]")
CPF = re.compile(r"^\d{11}$")
CNPJ = re.compile(r"^[A-Z0-9]{12}\d{2}$")


def _check_digit(characters, weights):
    remainder = sum((ord(character) - 48) * weight for character, weight in zip(characters, weights)) % 11
    return 0 if remainder < 2 else 11 - remainder


def cpf_check_digits(first_nine):
    """The two check digits of a CPF whose first nine digits are given."""
    first = _check_digit(first_nine, range(10, 1, -1))
    second = _check_digit(first_nine + str(first), range(11, 1, -1))
    return f"{first}{second}"


def cnpj_check_digits(first_twelve):
    """The two check digits of a CNPJ whose first twelve characters are given."""
    weights = (5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2)
    first = _check_digit(first_twelve, weights)
    second = _check_digit(first_twelve + str(first), (6,) + weights)
    return f"{first}{second}"


def unpunctuated(raw):
    """A CPF or CNPJ as processors take it: no dots, dashes, slashes or spaces, upper-case."""
    return SEPARATORS.sub("", raw or "").upper()


def document_key(raw):
    """`unpunctuated(raw)`, or ValueError if it is not a valid CPF or CNPJ."""
    key = unpunctuated(raw)
    if len(set(key)) > 1:
        if CPF.match(key) and cpf_check_digits(key[:9]) == key[9:]:
            return key
        if CNPJ.match(key) and cnpj_check_digits(key[:12]) == key[12:]:
            return key
    raise ValueError("Not a valid CPF or CNPJ.")


def normalize_document(raw):
    """A CPF or CNPJ in its usual punctuation, or ValueError if it is not a valid one."""
    key = document_key(raw)
    if len(key) == 11:
        return f"{key[:3]}.{key[3:6]}.{key[6:9]}-{key[9:]}"
    return f"{key[:2]}.{key[2:5]}.{key[5:8]}/{key[8:12]}-{key[12:]}"
