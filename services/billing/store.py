"""Reads and writes of the billing database, inside a caller's session.

Every buyer-facing read goes through `owned_row`/`owned_rows`, limited to what the
session's identity owns; a row outside it is indistinguishable from one that does not exist.
"""
import uuid

from sqlalchemy import select

from services.billing import domain
from services.billing.models import Order, PaymentMethod
from services.common import clock
from services.common.errors import ValidationFailed
from services.common.identity import owned_row, owned_rows


def find_by_external_id(session, merchant_id, external_id):
    return session.scalars(
        select(Order).filter_by(merchant_id=merchant_id, external_id=external_id)
    ).one_or_none()


def _unused_order_code(session):
    while True:
        code = domain.new_order_code()
        if session.scalars(select(Order.id).filter_by(code=code)).first() is None:
            return code


def _card_on_file(session, order, now):
    """The payment method of the card's token, added on first use.

    A token is bound to the buyer it was issued for: one arriving for anyone else is
    refused rather than attached to their orders.
    """
    payment = order["payment"]
    if not payment["token"]:
        return None
    card = session.scalars(select(PaymentMethod).filter_by(token=payment["token"])).one_or_none()
    if card is None:
        card = PaymentMethod(
            id=str(uuid.uuid4()), merchant_id=order["merchant_id"], email=order["buyer"]["email"],
            token=payment["token"], brand=payment["card_brand"], last4=payment["card_last4"],
            exp=payment["card_exp"], created_at=now,
        )
        session.add(card)
    elif (card.merchant_id, card.email) != (order["merchant_id"], order["buyer"]["email"]):
        raise ValidationFailed(
            "The card token belongs to another buyer.",
            fields={"payment": {"token": ["Belongs to another buyer."]}},
        )
    return card


def create_order(session, data):
    now = clock.now()
    created_at = data["created_at"] or now
    payment = data["payment"]
    buyer = data["buyer"]
    card = _card_on_file(session, data, now)
    order = Order(
        id=str(uuid.uuid4()),
        code=_unused_order_code(session),
        merchant_id=data["merchant_id"],
        external_id=data["external_id"],
        email=buyer["email"],
        buyer_name=buyer["name"],
        buyer_document=buyer["document"],
        buyer_phone=buyer["phone"],
        address=data["address"],
        product_name=data["product_name"],
        offer_id=data["offer_id"],
        subscription_id=str(data["subscription_id"]) if data["subscription_id"] else None,
        cycle_number=data["cycle_number"],
        amount_cents=data["amount_cents"],
        installments=data["installments"],
        status=data["status"],
        payment_method=payment["method"],
        payment_method_id=card.id if card else None,
        card_brand=payment["card_brand"],
        card_last4=payment["card_last4"],
        boleto_line=payment["boleto_line"],
        boleto_due_date=payment["boleto_due_date"],
        pix_code=payment["pix_code"],
        created_at=created_at,
        paid_at=domain.paid_at(data["status"], data["paid_at"], created_at),
    )
    session.add(order)
    session.flush()
    return order


def buyer_orders(session, identity):
    return owned_rows(session, Order, identity, Order.created_at.desc(), Order.code)


def buyer_order(session, identity, code):
    return owned_row(session, Order, identity, "Order not found.", code=code)
