"""A pending pix and a pending boleto in a real browser, against a system of its own:
the QR and the barcode load as images under the pages' CSP, the copy button (the
nonce'd script) copies the code, the page works without JavaScript and fits a phone."""
import io
import re

import pytest
import zxingcpp
from PIL import Image

from services.common import payment_codes
from services.common.rpc import ClusterRpcProxy
from support import payments
from support.browser import BuyerBrowser, artifacts_folder
from support.journey import new_buyer_page
from support.system import BROKER

PHONE = {"width": 360, "height": 740}
# A phone's screen: three device pixels to a CSS pixel. At one, a barcode's narrow bar is
# about a pixel wide, and whether a reader reads it depends on where the image lands.
PHONE_DENSITY = 3
LOADED = "image => image.complete && image.naturalWidth > 0 && image.naturalHeight > 0"


@pytest.fixture(scope="module")
def buyer(system):
    with ClusterRpcProxy({"AMQP_URI": f"{BROKER}/{system.vhost}"}, timeout=30) as rpc:
        return payments.buyer_with_pending_payments(rpc, "browser-pay")


def scanned(image):
    """What a barcode reader reads in the image as the browser draws it."""
    image.evaluate("image => image.decode()")
    return [result.text for result in zxingcpp.read_barcodes(Image.open(io.BytesIO(image.screenshot())))]


def order_page(chromium, system, buyer, method):
    """The buyer's pending `method` order on a phone, and the list of every CSP
    violation its pages report (as the console says them)."""
    browser = new_buyer_page(chromium, system, artifacts_folder("payment") / method, PHONE, PHONE_DENSITY)
    browser.page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=system.gateway_url)
    refused = []
    browser.page.on("console", lambda message: refused.append(message.text)
                    if "Content Security Policy" in message.text else None)
    browser.log_in(buyer["email"])
    browser.open(f"/pedidos/{buyer[method]['code']}")
    browser.check(f"{method}-order")
    return browser, refused


def test_the_pix_qr_loads_and_the_copy_button_copies_the_code(system, chromium, buyer):
    browser, refused = order_page(chromium, system, buyer, "pix")

    qr = browser.page.get_by_role("img", name="QR Code do pix de R$ 29,90")
    assert qr.evaluate(LOADED)
    assert scanned(qr) == [buyer["pix"]["payment"]["pix_code"]]
    assert browser.page.get_by_label("Pix copia e cola").input_value() == buyer["pix"]["payment"]["pix_code"]
    browser.page.get_by_role("button", name="Copiar código pix").click()
    browser.page.get_by_text("Copiado!").wait_for()
    assert browser.page.evaluate("navigator.clipboard.readText()") == buyer["pix"]["payment"]["pix_code"]
    assert browser.page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert refused == []


def test_the_boleto_barcode_loads_and_its_printable_page_prints(system, chromium, buyer):
    browser, refused = order_page(chromium, system, buyer, "boleto")

    barcode = browser.page.get_by_role("img", name="Código de barras do boleto (os mesmos números da linha digitável)")
    assert barcode.evaluate(LOADED)
    assert browser.page.get_by_label("Linha digitável do boleto").input_value().replace(".", "").replace(" ", "") == (
        buyer["boleto"]["payment"]["boleto_line"])
    assert browser.page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    browser.follow("Imprimir boleto")
    browser.check("boleto-printable")
    assert browser.page.get_by_role("img").first.evaluate(LOADED)
    assert browser.page.get_by_role("button", name="Imprimir").is_visible()
    # The barcode as the browser draws it scans back to the order's 44 digits.
    browser.page.set_viewport_size({"width": 1280, "height": 900})
    assert scanned(browser.page.locator("img.barcode")) == [buyer["boleto"]["payment"]["boleto_barcode"]]
    browser.page.emulate_media(media="print")
    assert not browser.page.get_by_role("banner").is_visible()
    assert browser.page.get_by_role("img").first.is_visible()
    assert refused == []


def test_without_javascript_the_codes_are_there_to_select_and_no_button_shows(system, chromium, buyer):
    context = chromium.new_context(viewport=PHONE, locale="pt-BR", java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(15_000)
    browser = BuyerBrowser(page, system, artifacts_folder("payment") / "no-script")
    browser.check = lambda name: page.screenshot(path=str(browser.folder / f"{name}.png"), full_page=True)  # axe needs scripts
    browser.log_in(buyer["email"])
    for method in ("pix", "boleto"):
        browser.open(f"/pedidos/{buyer[method]['code']}")
        page.wait_for_load_state("load")
        browser.check(f"{method}-order")
        assert page.locator("img.qr, img.barcode").evaluate(LOADED)
        assert not page.get_by_role("button", name=re.compile("^Copiar")).is_visible()
    assert page.get_by_label("Linha digitável do boleto").input_value() == payment_codes.boleto_line_display(
        buyer["boleto"]["payment"]["boleto_line"])
    context.close()
