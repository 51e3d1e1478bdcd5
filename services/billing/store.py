"""Reads and writes of the billing database, inside a caller's session.

Every buyer-facing read goes through `owned_row`/`owned_rows`, limited to what the
session's identity owns; a row outside it is indistinguishable from one that does not exist.
"""
import uuid
from datetime import timedelta

from sqlalchemy import and_, delete, func, or_, select, update

from services.billing import domain
from services.billing.models import CardEntryTicket, CardEntryWindow, Order, PaymentMethod, ProcessorAccount, Refund
from services.common import clock
from services.common.errors import NotFound, ValidationFailed
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


def card_on_file(session, merchant_id, email, payment, now):
    """The payment method of the card's token (`payment`: token, card_brand, card_last4,
    card_exp), added on first use, as issued by the merchant's processor account.

    A token is bound to the buyer it was issued for: one arriving for anyone else is
    refused rather than attached to their orders.
    """
    if not payment["token"]:
        return None
    card = session.scalars(select(PaymentMethod).filter_by(token=payment["token"])).one_or_none()
    if card is None:
        account = merchant_account(session, merchant_id)
        card = PaymentMethod(
            id=str(uuid.uuid4()), merchant_id=merchant_id, email=email,
            token=payment["token"], brand=payment["card_brand"], last4=payment["card_last4"],
            exp=payment["card_exp"], processor_account_id=account and account.id,
            customer_ref=payment.get("customer_ref"), created_at=now,
        )
        session.add(card)
    elif (card.merchant_id, card.email) != (merchant_id, email):
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
    card = card_on_file(session, data["merchant_id"], buyer["email"], payment, now)
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


def buyer_orders(session, identity, subscription_id=None):
    """The buyer's orders, newest first; only one subscription's if `subscription_id` is given."""
    key = {} if subscription_id is None else {"subscription_id": subscription_id}
    return owned_rows(session, Order, identity, Order.created_at.desc(), Order.code, **key)


def customer_orders_page(session, merchant_id, email, cursor, limit):
    """The merchant's orders of the buyer `email`, newest first (by creation, then code):
    up to `limit` after the order coded `cursor`, and the next page's cursor (the code
    of the page's last order) or None. A cursor that is none of these orders' answers
    an empty page, as another merchant's buyer does."""
    query = select(Order).filter_by(merchant_id=merchant_id, email=email)
    if cursor is not None:
        after = session.scalars(query.filter_by(code=cursor)).one_or_none()
        if after is None:
            return [], None
        query = query.where(or_(Order.created_at < after.created_at,
                                and_(Order.created_at == after.created_at, Order.code < after.code)))
    rows = session.scalars(query.order_by(Order.created_at.desc(), Order.code.desc()).limit(limit + 1)).all()
    return rows[:limit], (rows[limit - 1].code if len(rows) > limit else None)


def buyer_order(session, identity, code):
    return owned_row(session, Order, identity, "Order not found.", code=code)


# -- charges

def order_by_key(session, idempotency_key):
    return session.scalars(select(Order).filter_by(idempotency_key=idempotency_key)).one_or_none()


def orders_by_keys(session, idempotency_keys):
    """Key → order, of those keys that have one."""
    if not idempotency_keys:
        return {}
    orders = session.scalars(select(Order).where(Order.idempotency_key.in_(set(idempotency_keys))))
    return {order.idempotency_key: order for order in orders}


def orders_by_ids(session, order_ids):
    return session.scalars(select(Order).where(Order.id.in_(set(order_ids)))).all() if order_ids else []


def order_by_code(session, code):
    return session.scalars(select(Order).filter_by(code=code)).one_or_none()


def cards_by_token(session, tokens):
    """Token → payment method, of those tokens billing knows (whoever they belong to)."""
    if not tokens:
        return {}
    return {card.token: card for card in session.scalars(select(PaymentMethod).where(PaymentMethod.token.in_(set(tokens))))}


def cards_by_ids(session, payment_method_ids):
    """Id → payment method."""
    if not payment_method_ids:
        return {}
    return {card.id: card for card in session.scalars(select(PaymentMethod).where(PaymentMethod.id.in_(set(payment_method_ids))))}


# -- processor accounts

def merchant_account(session, merchant_id):
    return session.scalars(select(ProcessorAccount).filter_by(merchant_id=merchant_id)).one_or_none()


def accounts_of(session, merchant_ids=(), account_ids=()):
    """Merchant id → its account and account id → account, in one dict (a merchant id
    and an account id never look alike: slugs against UUIDs)."""
    merchant_ids, account_ids = set(merchant_ids), set(filter(None, account_ids))
    if not merchant_ids and not account_ids:
        return {}
    rows = session.scalars(select(ProcessorAccount).where(
        ProcessorAccount.merchant_id.in_(merchant_ids) | ProcessorAccount.id.in_(account_ids)))
    found = {}
    for account in rows:
        found[account.id] = account
        if account.merchant_id in merchant_ids:
            found[account.merchant_id] = account
    return found


def order_account(session, order):
    """The account `order` was charged through, or None (the installation's processor)."""
    if order is None or order.processor_account_id is None:
        return None
    return session.get(ProcessorAccount, order.processor_account_id)


def account_by_id(session, account_id):
    return session.get(ProcessorAccount, account_id)


def put_account(session, merchant_id, account_id, values, now):
    """Create (with `account_id`) or replace the merchant's account: (account, created)."""
    account = merchant_account(session, merchant_id)
    created = account is None
    if created:
        account = ProcessorAccount(id=account_id, merchant_id=merchant_id, created_at=now)
        session.add(account)
    for name, value in values.items():
        setattr(account, name, value)
    account.updated_at = now
    session.flush()
    return account, created


def list_accounts(session, merchant_id=None):
    query = select(ProcessorAccount).order_by(ProcessorAccount.merchant_id)
    if merchant_id is not None:
        query = query.filter_by(merchant_id=merchant_id)
    return session.scalars(query).all()


def every_account_for_update(session):
    return session.scalars(select(ProcessorAccount).order_by(ProcessorAccount.id).with_for_update()).all()


def _buyer_snapshots(session, subscription_ids):
    """Subscription id → who the buyer was and where, as its latest order recorded it."""
    if not subscription_ids:
        return {}
    newest_first = func.row_number().over(
        partition_by=Order.subscription_id, order_by=Order.created_at.desc()).label("newest_first")
    latest = (
        select(Order.subscription_id, Order.buyer_name, Order.buyer_document, Order.buyer_phone, Order.address,
               Order.offer_id, newest_first)
        .where(Order.subscription_id.in_(set(subscription_ids)))
        .subquery()
    )
    rows = session.execute(select(latest).where(latest.c.newest_first == 1))
    return {
        row.subscription_id: {
            "buyer_name": row.buyer_name, "buyer_document": row.buyer_document, "buyer_phone": row.buyer_phone,
            "address": row.address, "offer_id": row.offer_id,
        }
        for row in rows
    }


def _unused_order_codes(session, count):
    """`count` distinct order codes that no order has yet."""
    codes = set()
    while len(codes) < count:
        drawn = {domain.new_order_code() for _ in range(count - len(codes))} - codes
        codes |= drawn - set(session.scalars(select(Order.code).where(Order.code.in_(drawn))))
    return list(codes)


def create_charge_orders(session, claims, processor_name):
    """The orders of new charges, each claimed under its idempotency key before the
    processor is asked (a concurrent claim of the same key fails on the unique column).

    `claims`: (request, card or None, boleto due date or None, processor account or
    None) tuples; without an account the order goes to the installation's processor,
    `processor_name`. Each order copies the buyer snapshot of its subscription's latest order."""
    now = clock.now()
    snapshots = _buyer_snapshots(session, [str(request["subscription_id"]) for request, *_ in claims])
    orders = []
    for (request, card, boleto_due_date, account), code in zip(claims, _unused_order_codes(session, len(claims))):
        status = domain.claimed_status(request["amount_cents"])
        subscription_id = str(request["subscription_id"])
        orders.append(Order(
            id=str(uuid.uuid4()),
            code=code,
            merchant_id=request["merchant_id"],
            email=request["email"],
            product_name=request["product_name"],
            subscription_id=subscription_id,
            cycle_number=request["cycle_number"],
            amount_cents=request["amount_cents"],
            installments=request["installments"],
            status=status,
            payment_method=request["method"],
            payment_method_id=card.id if card else None,
            card_brand=card.brand if card else None,
            card_last4=card.last4 if card else None,
            boleto_due_date=boleto_due_date if status != "paid" else None,
            idempotency_key=request["idempotency_key"],
            kind=request["kind"],
            processor=(account.processor if account else processor_name) if status != "paid" else None,
            processor_account_id=account.id if account and status != "paid" else None,
            created_at=now,
            paid_at=now if status == "paid" else None,
            **snapshots.get(subscription_id, {}),
        ))
    session.add_all(orders)
    session.flush()
    return orders


def move_order(session, order, to_status, **values):
    """Move `order` from the status it was read with to `to_status`; False (and no
    change) if someone else moved it first."""
    # The ORM applies the new values to `order` itself (synchronize_session), so it
    # needs no reading back.
    moved = session.execute(
        update(Order).where(Order.id == order.id, Order.status == order.status).values(status=to_status, **values)
        .execution_options(synchronize_session="evaluate")
    ).rowcount
    return bool(moved)


def awaiting_confirmation(session, default_processor, limit):
    """Orders whose charge has an unknown outcome: those of merchants' accounts, and
    those of the installation's processor (`default_processor`)."""
    return session.scalars(
        select(Order)
        .where(Order.status == "pending_confirmation",
               Order.processor_account_id.is_not(None) | (Order.processor == default_processor))
        .order_by(Order.created_at)
        .limit(limit)
    ).all()


# -- refunds

def refund_by_request_key(session, merchant_id, request_key):
    return session.scalars(select(Refund).filter_by(merchant_id=merchant_id, request_key=request_key)).one_or_none()


def merchant_order(session, merchant_id, code, for_update=False):
    """The merchant's order of `code` (locked for update when asked), or NotFound: an
    order of another merchant is one that does not exist."""
    query = select(Order).filter_by(merchant_id=merchant_id, code=code)
    order = session.scalars(query.with_for_update() if for_update else query).one_or_none()
    if order is None:
        raise NotFound("Order not found.", fields={"code": ["No order of this merchant has this code."]})
    return order


def refunded_cents(session, order_id, statuses):
    """The sum of the order's refunds in `statuses`."""
    return session.scalar(
        select(func.coalesce(func.sum(Refund.amount_cents), 0))
        .where(Refund.order_id == order_id, Refund.status.in_(statuses))
    )


def add_refund(session, order, request, amount_cents, status, now):
    refund = Refund(
        id=str(uuid.uuid4()), order_id=order.id, merchant_id=order.merchant_id, request_key=request["request_key"],
        amount_cents=amount_cents, reason=request["reason"], actor=request["actor"], status=status,
        processor=order.processor, processor_account_id=order.processor_account_id, created_at=now,
    )
    session.add(refund)
    session.flush()
    return refund


def order_refunds(session, order_ids):
    """Order id → its refunds, oldest first."""
    found = {order_id: [] for order_id in order_ids}
    if order_ids:
        query = select(Refund).where(Refund.order_id.in_(set(order_ids))).order_by(Refund.created_at, Refund.id)
        for refund in session.scalars(query):
            found[refund.order_id].append(refund)
    return found


def move_refund(session, refund, to_status, **values):
    """Move `refund` from the status it was read with; False if someone moved it first."""
    return bool(session.execute(
        update(Refund).where(Refund.id == refund.id, Refund.status == refund.status)
        .values(status=to_status, **values).execution_options(synchronize_session="evaluate")
    ).rowcount)


def refunds_awaiting_processor(session, default_processor, limit):
    """Refunds asked of a processor whose outcome is not known yet (as
    `awaiting_confirmation` for charges)."""
    return session.scalars(
        select(Refund)
        .where(Refund.status == "pending",
               Refund.processor_account_id.is_not(None) | (Refund.processor == default_processor))
        .order_by(Refund.created_at)
        .limit(limit)
    ).all()


def refunds_by_status(session, status, merchant_id=None):
    query = select(Refund).filter_by(status=status).order_by(Refund.created_at)
    if merchant_id is not None:
        query = query.filter_by(merchant_id=merchant_id)
    return session.scalars(query).all()


# -- card entry

def add_ticket(session, request, digest, now, ttl_seconds):
    ticket = CardEntryTicket(
        id=str(uuid.uuid4()), ticket_digest=digest, merchant_id=request["merchant_id"],
        email=request["email"], subscription_id=str(request["subscription_id"]),
        created_at=now, expires_at=now + timedelta(seconds=ttl_seconds), attempts=0, holder=request["holder"],
    )
    session.add(ticket)
    return ticket


def latest_buyer(session, ticket):
    """The latest order of the ticket's subscription, by its buyer at its merchant, or None:
    who the buyer is, as the checkout sent them."""
    return session.scalars(
        select(Order).filter_by(merchant_id=ticket.merchant_id, email=ticket.email,
                                subscription_id=ticket.subscription_id)
        .order_by(Order.created_at.desc()).limit(1)
    ).first()


def ticket_by_digest(session, digest):
    return session.scalars(select(CardEntryTicket).filter_by(ticket_digest=digest)).one_or_none()


def count_address_attempt(session, address, now, window_seconds):
    """Add one try to this address's current window and return the new count.

    The increment happens in the database and is read back after it, so concurrent
    tries each see their own count (the row stays locked until commit).
    """
    start = domain.window_start(now, window_seconds)
    session.execute(delete(CardEntryWindow).where(CardEntryWindow.window_start < start))
    window = {"address": address, "window_start": start}
    if session.scalars(select(CardEntryWindow.id).filter_by(**window)).first() is None:
        session.add(CardEntryWindow(**window, attempts=0))
        session.flush()
    session.execute(
        update(CardEntryWindow).filter_by(**window).values(attempts=CardEntryWindow.attempts + 1)
    )
    return session.scalars(select(CardEntryWindow.attempts).filter_by(**window)).one()


def count_ticket_attempt(session, ticket):
    session.execute(
        update(CardEntryTicket).where(CardEntryTicket.id == ticket.id)
        .values(attempts=CardEntryTicket.attempts + 1)
    )


def use_ticket(session, ticket, payment_method_id, now):
    """Mark the ticket used by this card; False if another submission used it first."""
    return bool(session.execute(
        update(CardEntryTicket)
        .where(CardEntryTicket.id == ticket.id, CardEntryTicket.used_at.is_(None))
        .values(used_at=now, payment_method_id=payment_method_id, holder=None)
    ).rowcount)


def add_card(session, ticket, tokenized, account, now):
    """The card the processor tokenized (through `account`, None: the installation's
    processor), bound to the ticket's buyer."""
    card = PaymentMethod(
        id=str(uuid.uuid4()), merchant_id=ticket.merchant_id, email=ticket.email,
        token=tokenized.token, brand=tokenized.brand, last4=tokenized.last4,
        exp=domain.expiry_text(tokenized.exp_month, tokenized.exp_year),
        processor_account_id=account and account.id, customer_ref=tokenized.customer_ref, created_at=now,
    )
    session.add(card)
    session.flush()
    return card


def buyer_card(session, identity, token):
    return owned_row(session, PaymentMethod, identity, "Payment method not found.", token=token)
