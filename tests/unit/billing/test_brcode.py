"""Pix copy-paste codes: EMV TLV fields and their CRC16."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.billing.processors import brcode, sandbox
from support.secret_scan import card_numbers_in

# The Central Bank's BR Code manual example (a static code).
BCB_EXAMPLE = (
    "00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-4266554400005204000053039865802BR"
    "5913Fulano de Tal6008BRASILIA62070503***63041D3D"
)
KEY = "123e4567-e12b-12d1-a456-426655440000"

amounts = st.integers(1, 10**9)
txids = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=25)
names = st.text(min_size=1, max_size=40).filter(lambda name: brcode.plain_ascii(name, 25))


def test_crc16_ccitt_check_value():
    assert brcode.crc16_ccitt("123456789") == "29B1"


def test_the_central_banks_example():
    assert brcode.crc_is_valid(BCB_EXAMPLE)
    fields = brcode.parse_pix_code(BCB_EXAMPLE)
    assert fields["26"] == {"00": "br.gov.bcb.pix", "01": KEY}
    assert (fields["53"], fields["58"], fields["59"], fields["63"]) == ("986", "BR", "Fulano de Tal", "1D3D")


def test_a_code_for_an_amount():
    code = brcode.pix_code(KEY, 1990, "Acme Cursos Ltda", "São Paulo", "ABC123")
    fields = brcode.parse_pix_code(code)
    assert (fields["01"], fields["54"], fields["59"], fields["60"]) == ("12", "19.90", "ACME CURSOS LTDA", "SAO PAULO")
    assert fields["62"] == {"05": "ABC123"}
    assert code.endswith("6304" + brcode.crc16_ccitt(code[:-4]))


@given(amounts, names, txids)
def test_every_code_parses_back_to_what_was_asked(amount, name, txid):
    code = brcode.pix_code(KEY, amount, name, "Rio de Janeiro", txid)
    fields = brcode.parse_pix_code(code)
    assert fields["54"] == f"{amount // 100}.{amount % 100:02d}"
    assert fields["62"]["05"] == txid
    assert len(fields["59"]) <= 25 and fields["59"].isascii()
    assert code.isascii()


@given(amounts, txids, st.data())
def test_any_changed_character_breaks_the_crc(amount, txid, data):
    code = brcode.pix_code(KEY, amount, "Acme", "Sao Paulo", txid)
    position = data.draw(st.integers(0, len(code) - 1))
    other = data.draw(st.sampled_from([c for c in "0123456789ABCDEFabcdef.-" if c != code[position]]))
    assert not brcode.crc_is_valid(code[:position] + other + code[position + 1:])


@pytest.mark.parametrize("code", ["", "0002", BCB_EXAMPLE[:-1] + "E", "0002016304" + brcode.crc16_ccitt("0002016304")])
def test_broken_codes_are_refused(code):
    with pytest.raises(ValueError):
        brcode.parse_pix_code(code)


def test_a_txid_is_letters_and_digits():
    with pytest.raises(ValueError):
        brcode.pix_code(KEY, 100, "Acme", "Sao Paulo", "no-dashes")


@given(st.text(min_size=1, max_size=60))
def test_no_sandbox_pix_code_passes_for_a_card_number(key):
    """A txid of hex digits could hold a Luhn-valid 13-digit run that the suite's
    secret scan takes for a card number; the sandbox's txid is letters only."""
    txid = sandbox.txid(key)
    code = brcode.pix_code(sandbox.SANDBOX_PIX_KEY, 123456, "acme-cursos", sandbox.SANDBOX_CITY, txid)
    assert txid.isalpha() and len(txid) == brcode.MAX_TXID
    assert brcode.parse_pix_code(code)["62"]["05"] == txid
    assert card_numbers_in(code) == []
