"""Renewal batch: N subscriptions due at once, renewed by the subscriptions service's own
renewal job (its timer, every replica competing through the database), timed from the
moment the shared clock makes them due until the last one has its new cycle."""
import json
import time
from collections import deque
from functools import partial
from datetime import timedelta
from pathlib import Path

import eventlet
from sqlalchemy import text

from services.common import clock
from services.subscriptions.domain import add_months

MERCHANT = "acme-cursos"
OFFER = "acme-basico-mensal"  # monthly, card: renewed on the day its cycle ends
PRICE_CENTS = 2990
CARD = {"method": "credit_card", "card_brand": "visa", "card_last4": "4242", "card_exp": "08/2030"}
BUYERS = 100
# Cycles of a new batch end this long after "now"; the clock then moves past that.
DUE_IN = timedelta(days=5)


def _call_all(calls, in_flight):
    """Make every call (a no-argument function returning a nameko reply), `in_flight`
    under way at once through one standalone proxy, whose replies only one thread may
    wait for."""
    pending = deque()
    for call in calls:
        pending.append(call())
        if len(pending) >= in_flight:
            pending.popleft().result()
    while pending:
        pending.popleft().result()


def create_batch(rpc, engine, label, count, in_flight=20):
    """`count` active card subscriptions whose cycle ends `DUE_IN` from now, their
    external ids starting with `label`, for `BUYERS` buyers whose cards billing knows
    from a checkout's order, as a real checkout leaves them.

    Each buyer's first subscription goes through the services' own intake; the rest
    are copies of those rows made by the database, since registering 10 000 one by
    one would take longer than renewing them and is not what is measured here.
    Returns the seconds the creation took."""
    started = time.perf_counter()
    token = f"tok_bench_{label}_{{}}".format
    _call_all((
        partial(rpc.billing.record_order.call_async, {
            "merchant_id": MERCHANT, "external_id": f"{label}-checkout-{buyer}", "buyer": {"email": buyer_email(buyer)},
            "product_name": "Curso Completo", "offer_id": OFFER, "amount_cents": PRICE_CENTS, "status": "paid",
            "payment": {**CARD, "token": token(buyer)},
        }) for buyer in range(BUYERS)
    ), in_flight)
    cycle_start = clock.now() + DUE_IN - timedelta(days=30)
    _call_all((
        partial(rpc.subscriptions.create_subscription.call_async, {
            "merchant_id": MERCHANT, "external_id": f"{label}-first-{buyer}", "offer_id": OFFER,
            "email": buyer_email(buyer), "status": "active", "cycle_number": 1,
            "cycle_start": cycle_start.isoformat(), "cycle_end": add_months(cycle_start, 1).isoformat(),
            "installments": 1, "payment": {**CARD, "token": token(buyer)},
        }) for buyer in range(BUYERS)
    ), in_flight)
    copies = count // BUYERS - 1
    with engine.begin() as connection:
        columns = [name for name in connection.execute(text(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'subscriptions' "
            "AND column_name NOT IN ('id', 'external_id') ORDER BY ordinal_position")).scalars()]
        listed = ", ".join(columns)
        connection.execute(text(
            f"INSERT INTO subscriptions (id, external_id, {listed}) "
            f"SELECT gen_random_uuid()::text, first.external_id || '-copy-' || copy, {listed} "
            "FROM subscriptions AS first CROSS JOIN generate_series(1, :copies) AS copy "
            "WHERE first.external_id LIKE :pattern"
        ), {"copies": copies, "pattern": f"{label}-first-%"})
    return time.perf_counter() - started


def buyer_email(buyer):
    return f"bench-renewal-{buyer}@example.com"


def renewed_count(engine, label):
    with engine.connect() as connection:
        return connection.execute(text(
            "SELECT count(*) FROM subscriptions WHERE external_id LIKE :pattern AND cycle_number >= 2"
        ), {"pattern": f"{label}-%"}).scalar_one()


def park_unrenewed(engine, label):
    """Take the batch's subscriptions not renewed yet out of the renewal job's way, so
    that they do not stand, oldest first, in front of the next batch it is timed on."""
    with engine.begin() as connection:
        connection.execute(text(
            "UPDATE subscriptions SET renewal_run_at = NULL WHERE external_id LIKE :pattern AND cycle_number = 1"
        ), {"pattern": f"{label}-%"})


def renew_batch(engine, clock_file, label, count, timeout):
    """Move the shared clock past the batch's cycle end and wait until all `count` are
    renewed: {"seconds", "renewed", "per_second"}."""
    current = json.loads(Path(clock_file).read_text()).get("offset_seconds", 0)
    clock.write_clock_file(clock_file, offset_seconds=current + (DUE_IN + timedelta(days=1)).total_seconds())
    started = time.perf_counter()
    deadline = started + timeout
    renewed = 0
    while time.perf_counter() < deadline:
        renewed = renewed_count(engine, label)
        if renewed >= count:
            break
        eventlet.sleep(0.2)
    seconds = time.perf_counter() - started
    return {"count": count, "renewed": renewed, "seconds": round(seconds, 2),
            "per_second": round(renewed / seconds, 1)}
