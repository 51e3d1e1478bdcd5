"""The pictures a buyer pays with, read back by a barcode reader (zxing-cpp): the pix
QR holds the BR Code exactly, the boleto's barcode the 44 digits exactly."""
import base64
import io
import re
from urllib.parse import unquote

import pytest
import zxingcpp
from barcode.writer import ImageWriter
from PIL import Image

from services.billing.processors import boleto, brcode
from services.common import payment_codes

PIX_CODE = brcode.pix_code("00000000-0000-4000-8000-00000000a5b0", 4700, "Acme Cursos", "São Paulo", "PEDABCDEFGH")
# Banco do Brasil's published example (tests/unit/billing/test_boleto.py).
BB_BARCODE = "00193373700000001000500940144816060680935031"


def read(image):
    return [(result.format, result.text) for result in zxingcpp.read_barcodes(image)]


def test_the_pix_qr_png_reads_back_as_the_br_code():
    image = Image.open(io.BytesIO(payment_codes.pix_qr_png(PIX_CODE)))
    assert image.format == "PNG"
    assert read(image) == [(zxingcpp.BarcodeFormat.QRCode, PIX_CODE)]


def test_the_pix_qr_svg_is_the_same_symbol_as_a_data_uri():
    uri = payment_codes.pix_qr_svg_data_uri(PIX_CODE, scale=4)
    assert uri.startswith("data:image/svg+xml")
    svg = unquote(uri.partition(",")[2])
    # The symbol that reads back as PNG, with its quiet zone, 4 px a module.
    side = (payment_codes.pix_qr(PIX_CODE).symbol_size(scale=1, border=payment_codes.QR_BORDER)[0]) * 4
    assert re.search(rf"<svg[^>]+width=.{side}.[^>]+height=.{side}.", svg)
    assert "<path" in svg


def test_there_is_no_qr_without_a_code():
    with pytest.raises(ValueError):
        payment_codes.pix_qr("")


@pytest.mark.parametrize("digits", [
    BB_BARCODE,
    boleto.barcode("999", 4700, boleto.FACTOR_BASE.replace(year=2027), "0" * 24 + "7"),
])
def test_the_boleto_barcode_is_interleaved_2_of_5_of_the_44_digits(digits):
    # The bars python-barcode builds, drawn as a bitmap here only so a reader can scan them.
    bars = payment_codes.boleto_barcode(digits, writer=ImageWriter())
    image = bars.render({**payment_codes.ITF_OPTIONS, "dpi": 300})
    assert read(image) == [(zxingcpp.BarcodeFormat.ITF, digits)]


def test_the_barcode_follows_febraban_s_layout():
    # 1:3 bars: start (4 narrow), 22 pairs of 5 bars + 5 spaces (2 wide each), stop (wide, narrow, narrow).
    [modules] = payment_codes.boleto_barcode(BB_BARCODE).build()
    assert len(modules) == 4 + 22 * 2 * (3 + 2 * 3) + 5 == 405
    assert modules.startswith("1010") and modules.endswith("11101")
    width_mm = len(modules) * payment_codes.ITF_OPTIONS["module_width"]
    assert width_mm <= 103


def test_the_barcode_svg_is_a_data_uri_without_text():
    uri = payment_codes.boleto_barcode_svg_data_uri(BB_BARCODE)
    assert uri.startswith("data:image/svg+xml;base64,")
    svg = base64.b64decode(uri.partition(",")[2]).decode()
    assert "<svg" in svg and "<text" not in svg


@pytest.mark.parametrize("digits", ["", "123", BB_BARCODE + "0", BB_BARCODE[:-1] + "x", None])
def test_only_44_digits_make_a_boleto_barcode(digits):
    with pytest.raises(ValueError):
        payment_codes.boleto_barcode(digits)


def test_boleto_line_is_grouped_as_banks_print_it():
    digits = "00190000090123456789012345678901234560000010000"
    assert payment_codes.boleto_line_display(digits) == "00190.00009 01234.567890 12345.678901 2 34560000010000"
    assert payment_codes.boleto_line_display("123") == "123"
    assert payment_codes.boleto_line_display(None) == ""
