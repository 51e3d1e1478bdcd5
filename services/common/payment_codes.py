"""Pictures of the codes a buyer pays with, drawn by libraries made for them: the pix
QR of a BR Code (segno) and a boleto's interleaved 2 of 5 barcode (python-barcode).

The gateway's pages and notifications' e-mails both show them, so they are drawn
here, in one way: a QR is the BR Code exactly as given (a banking app reads the
payload, nothing else); a barcode is the 44 digits exactly as given.
"""
import base64
import io

import segno
from barcode import ITF
from barcode.writer import SVGWriter

# Medium error correction: a phone still reads a QR shown small or slightly smudged
# on a screen; segno raises it when that fits in the same size.
QR_ERROR_CORRECTION = "m"
QR_BORDER = 4  # modules of quiet zone: the QR standard's minimum
BOLETO_BARCODE_DIGITS = 44
# FEBRABAN's layout: bars 1:3 (narrow:wide), 13 mm high; 405 modules of 0.254 mm make
# the 103 mm the layout allows at most.
ITF_NARROW, ITF_WIDE = 1, 3
ITF_OPTIONS = {"module_width": 0.254, "module_height": 13.0, "quiet_zone": 6.35, "write_text": False}


def boleto_line_display(digits):
    """A linha digitável as banks print it: `00190.00009 01234.567890 ... 1 23450000010000`."""
    if not digits or len(digits) != 47 or not digits.isdigit():
        return digits or ""
    return (
        f"{digits[0:5]}.{digits[5:10]} {digits[10:15]}.{digits[15:21]} "
        f"{digits[21:26]}.{digits[26:32]} {digits[32]} {digits[33:]}"
    )


def pix_qr(code):
    """The QR of a pix copy-paste code (a `segno.QRCode`)."""
    if not code:
        raise ValueError("No pix code to draw.")
    return segno.make_qr(code, error=QR_ERROR_CORRECTION)


def pix_qr_svg_data_uri(code, scale=4):
    """The QR as an SVG `data:` URI, for an <img> of a page whose CSP allows data: images."""
    return pix_qr(code).svg_data_uri(scale=scale, border=QR_BORDER)


def pix_qr_png(code, scale=6):
    """The QR as PNG bytes: what mail clients show inline (few of them show SVG)."""
    out = io.BytesIO()
    pix_qr(code).save(out, kind="png", scale=scale, border=QR_BORDER)
    return out.getvalue()


def boleto_barcode(digits, writer=None):
    """The interleaved 2 of 5 barcode of a boleto's 44 digits (a python-barcode object;
    `writer` draws it, SVG by default)."""
    if not (isinstance(digits, str) and len(digits) == BOLETO_BARCODE_DIGITS and digits.isdigit()):
        raise ValueError(f"A boleto's barcode has {BOLETO_BARCODE_DIGITS} digits.")
    return ITF(digits, writer=writer or SVGWriter(), narrow=ITF_NARROW, wide=ITF_WIDE)


def boleto_barcode_svg(digits):
    return boleto_barcode(digits).render(ITF_OPTIONS)


def boleto_barcode_svg_data_uri(digits):
    return "data:image/svg+xml;base64," + base64.b64encode(boleto_barcode_svg(digits)).decode("ascii")
