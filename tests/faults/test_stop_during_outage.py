"""(f) SIGTERM while the RabbitMQ node is down: every subscriptions process and a
gateway exit within STOP_GRACE_SECONDS (plus the time a process takes to end),
instead of waiting for the broker to come back. Two buyer requests are in flight in
subscriptions, each held on a database lock the test takes: a quote let go just after
the SIGTERM commits (its answer, which cannot be sent, is replayed when the buyer
repeats it); a plan change held past the grace window is killed and rolls back, and
repeated once the broker is back it is charged and applied exactly once."""
import json
import signal
import time
import uuid

import eventlet
from sqlalchemy import text

from services.common.config import load_config
from services.common.db import make_engine
from support.auth_testing import rows
from support.workload import PREMIUM, buyers_with_subscriptions, client_of, post, report

# What a process needs after its stop, to kill what is left and end the interpreter.
EXIT_MARGIN_SECONDS = 10
# Abandoned requests are taken over after two minutes (subscriptions' domain.ABANDONED_AFTER).
PAST_ABANDONMENT_SECONDS = 180
RETRY_FOR_SECONDS = 90


def test_f_sigterm_while_the_broker_is_down_stops_in_bounded_time_and_leaves_nothing_half_done(
        fleet, rpc, rabbit_node):
    grace = float(load_config()["STOP_GRACE_SECONDS"])
    bound = grace + EXIT_MARGIN_SECONDS
    timeout = 3 * fleet.rpc_timeout
    [(session, quoting_id), (_, changing_id)] = buyers_with_subscriptions(fleet, rpc, 1, 2)
    plan_change = f"{fleet.gateway_url}/api/v1/me/subscriptions/{{}}/plan-change"
    quoted, _, problem = post(client_of(session), plan_change.format(changing_id) + "/quote",
                              {"offer_id": PREMIUM}, f"quote-{uuid.uuid4().hex}", timeout, None)
    assert quoted is not None and quoted.status_code == 201, problem
    quote = quoted.json()["quote"]
    in_flight = {
        "quote": (plan_change.format(quoting_id) + "/quote", {"offer_id": PREMIUM}, f"quote-{uuid.uuid4().hex}"),
        "change": (plan_change.format(changing_id), {"quote_id": quote["quote_id"], "installments": 1},
                   f"change-{uuid.uuid4().hex}"),
    }

    database = make_engine(fleet.database_urls["subscriptions"])
    quotes_held, row_held = database.connect(), database.connect()
    try:
        quotes_held.begin()
        quotes_held.execute(text("LOCK TABLE plan_change_quotes IN SHARE MODE"))  # new quotes wait
        row_held.begin()
        row_held.execute(text("SELECT id FROM subscriptions WHERE id = :id FOR UPDATE"), {"id": changing_id})
        first_tries = [eventlet.spawn(post, client_of(session), url, body, key, timeout, None)
                       for url, body, key in in_flight.values()]
        wait_for_lock_waiters(database, 2)

        rabbit_node.stop()
        stopping = fleet.running("subscriptions") + fleet.running("gateway")[:1]
        ends = [eventlet.spawn(timed_end, fleet, process, 2 * bound) for process in stopping]
        eventlet.sleep(1)
        quotes_held.commit()  # the quote goes on and commits while its process stops
        exits = [end.wait() for end in ends]
    finally:
        for held in (quotes_held, row_held):
            held.rollback()
            held.close()
        database.dispose()
    for first_try in first_tries:
        first_try.wait()

    rabbit_node.start()
    for process in stopping:
        fleet.start_process("subscriptions" if process in fleet.processes["subscriptions"] else "gateway")
    fleet.wait_until_serving()

    database_url = fleet.database_urls["subscriptions"]
    committed_quotes = [row for row in rows(database_url, "plan_change_quotes") if row["subscription_id"] == quoting_id]
    change_key = in_flight["change"][2]
    abandoned = [row for row in rows(database_url, "buyer_requests")
                 if row["idempotency_key"] == change_key and row["status"] == "running"]
    if abandoned:  # killed before it could release its key: a repeat takes it over later
        offset = json.loads(fleet.clock_file.read_text()).get("offset_seconds", 0)
        fleet.move_clock(offset_seconds=offset + PAST_ABANDONMENT_SECONDS)
    plan_before_repeat = offer_of(fleet, changing_id)
    charges_before_repeat = plan_change_orders(fleet, quote["quote_id"])
    repeats = {name: post(client_of(session), url, body, key, timeout, time.monotonic() + RETRY_FOR_SECONDS)
               for name, (url, body, key) in in_flight.items()}

    killed = [process for process in stopping if "killing what still runs" in process.log_path.read_text()]
    orders = plan_change_orders(fleet, quote["quote_id"])
    report("(f) SIGTERM while RabbitMQ is down", processes=len(exits),
           slowest_exit_s=round(max(elapsed for _, elapsed in exits), 1), bound_s=bound, killed=len(killed),
           quotes_committed=len(committed_quotes), changes_charged=len(orders))

    assert all(code == 0 and elapsed <= bound for code, elapsed in exits), exits
    # Only the process holding the plan change needed the grace window's kill.
    assert len(killed) == 1 and killed[0] in fleet.processes["subscriptions"]
    # The quote committed during the outage, once, and its repeat answers that quote.
    assert len(committed_quotes) == 1
    answer, _, problem = repeats["quote"]
    assert answer is not None and answer.status_code == 201, problem
    assert answer.json()["quote"]["quote_id"] == committed_quotes[0]["id"]
    # The killed plan change left nothing behind; repeated, it happened exactly once.
    assert plan_before_repeat != PREMIUM and charges_before_repeat == []
    answer, _, problem = repeats["change"]
    assert answer is not None and answer.status_code == 200, problem
    assert offer_of(fleet, changing_id) == PREMIUM
    assert [order["amount_cents"] for order in orders] == [quote["charge_cents"]]


def timed_end(fleet, process, timeout):
    """SIGTERM `process`: (its exit code, seconds it took to exit)."""
    started = time.monotonic()
    code = fleet.end(process, signal.SIGTERM, timeout=timeout)
    return code, time.monotonic() - started


def wait_for_lock_waiters(database, count, timeout=60):
    """Until `count` sessions of the database wait for a lock: the workers are in flight."""
    query = text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                 "AND wait_event_type = 'Lock'")
    deadline = time.monotonic() + timeout
    with database.connect() as connection:
        while connection.execute(query).scalar_one() < count:
            assert time.monotonic() < deadline, f"fewer than {count} requests reached the database"
            eventlet.sleep(0.1)


def offer_of(fleet, subscription_id):
    [row] = [row for row in rows(fleet.database_urls["subscriptions"], "subscriptions") if row["id"] == subscription_id]
    return row["offer_id"]


def plan_change_orders(fleet, quote_id):
    return [order for order in rows(fleet.database_urls["billing"], "orders")
            if order["kind"] == "plan_change" and order["idempotency_key"] == f"plan_change:{quote_id}"]
