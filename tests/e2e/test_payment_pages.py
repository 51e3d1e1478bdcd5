"""What a buyer sees to pay a pending pix or boleto, through the whole system: billing
charges through the sandbox, the order page shows the QR, the line, the barcode and
the printable page, only to that buyer; the pix e-mail carries its QR inline."""
import io
import re
import uuid
from email import message_from_bytes, policy

import pytest
import requests
import zxingcpp
from markupsafe import escape
from PIL import Image

from services.billing.processors import brcode
from services.common import payment_codes
from services.common.rpc import ClusterRpcProxy
from support import payments
from support.portal_client import TIMEOUT, log_in
from support.system import BROKER
from support.waiting import wait_until


@pytest.fixture(scope="module")
def rpc(system):
    with ClusterRpcProxy({"AMQP_URI": f"{BROKER}/{system.vhost}"}, timeout=30) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def buyer_with_pending_payments(system, rpc):
    buyer = payments.buyer_with_pending_payments(rpc, "e2e-pay")
    session, _, _ = log_in(system, buyer["email"])
    return {**buyer, "session": session}


def page(session, system, path):
    answer = session.get(f"{system.gateway_url}{path}", timeout=TIMEOUT, allow_redirects=False)
    return answer.status_code, answer.text


def test_the_pending_pix_order_page_shows_the_qr_and_the_code(system, buyer_with_pending_payments):
    buyer = buyer_with_pending_payments
    pix_code = buyer["pix"]["payment"]["pix_code"]
    status, html = page(buyer["session"], system, f"/pedidos/{buyer['pix']['code']}")

    assert status == 200
    assert f'src="{escape(payment_codes.pix_qr_svg_data_uri(pix_code))}"' in html
    assert f">{escape(pix_code)}</textarea>" in html


def test_the_pending_boleto_order_page_shows_line_barcode_and_printable_page(system, buyer_with_pending_payments):
    buyer = buyer_with_pending_payments
    code, payment = buyer["boleto"]["code"], buyer["boleto"]["payment"]
    status, html = page(buyer["session"], system, f"/pedidos/{code}")

    assert status == 200
    assert f'>{payment_codes.boleto_line_display(payment["boleto_line"])}</textarea>' in html
    assert f'src="{payment_codes.boleto_barcode_svg_data_uri(payment["boleto_barcode"])}"' in html
    # The sandbox has no PDF of its own: the link is the portal's printable page.
    assert f'href="/pedidos/{code}/boleto"' in html
    status, printable = page(buyer["session"], system, f"/pedidos/{code}/boleto")
    assert status == 200 and payment_codes.boleto_line_display(payment["boleto_line"]) in printable


def test_another_buyer_sees_neither_the_orders_nor_the_printable_boleto(system, buyer_with_pending_payments):
    buyer = buyer_with_pending_payments
    bruno, _, _ = log_in(system, "bruno@example.com")
    for path in (f"/pedidos/{buyer['pix']['code']}", f"/pedidos/{buyer['boleto']['code']}",
                 f"/pedidos/{buyer['boleto']['code']}/boleto"):
        status, html = page(bruno, system, path)
        assert status == 404, path
        assert buyer["boleto"]["payment"]["boleto_line"] not in html
        assert buyer["pix"]["payment"]["pix_code"] not in html
    # Without a session: to the login first.
    status, _ = page(requests.Session(), system, f"/pedidos/{buyer['boleto']['code']}/boleto")
    assert status == 303


def test_the_pix_e_mail_shows_the_qr_inline_with_the_code_as_text(system, rpc, buyer_with_pending_payments):
    # A checkout's pending pix order: its order_created calls for the pix e-mail.
    buyer = buyer_with_pending_payments
    pix_code = brcode.pix_code("00000000-0000-4000-8000-00000000a5b0", 2990, "Acme Cursos", "Sao Paulo", "EMAILQRTEST")
    order = rpc.billing.record_order({
        "merchant_id": "acme-cursos", "external_id": f"e2e-pix-{uuid.uuid4().hex[:10]}",
        "buyer": {"email": buyer["email"], "name": "Paula Teste"}, "product_name": "Workshop ao vivo",
        "amount_cents": 2990, "status": "pending", "payment": {"method": "pix", "pix_code": pix_code},
    })

    def pix_email():
        messages = requests.get(f"{system.mail_url}/api/messages", params={"to": buyer["email"]},
                                timeout=TIMEOUT).json()
        return next((m for m in messages if order["code"] in m["subject"]), None)

    summary = wait_until(pix_email, timeout=30, message="the pix e-mail")
    raw = requests.get(f"{system.mail_url}/messages/{summary['id']}.eml", timeout=TIMEOUT).content
    message = message_from_bytes(raw, policy=policy.default)
    html = message.get_body(("html",))
    [image] = [part for part in message.walk() if part.get_content_type() == "image/png"]
    content_id = image["Content-ID"].strip("<>")
    assert re.search(rf'<img src="cid:{re.escape(content_id)}"', html.get_content())
    [read] = zxingcpp.read_barcodes(Image.open(io.BytesIO(image.get_content())))
    assert read.text == pix_code
    assert pix_code in message.get_body(("plain",)).get_content()
