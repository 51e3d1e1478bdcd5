"""The renewal job, driven by the shared clock (CLOCK_FILE): renews, fails into
past_due, retries 1, 3 and 5 days after the first failed attempt, then cancels."""
import os
import subprocess
import sys
from datetime import timedelta

import eventlet.event
import pytest
from services.common.rpc import ClusterRpcProxy
from sqlalchemy import text
from sqlalchemy.orm import Session

from services.common.config import REPO_ROOT
from services.common.db import make_engine
from services.subscriptions import store
from services.subscriptions.service import SubscriptionsService
from support.subscriptions_testkit import ANA, NOW, envelopes, identity
from support.waiting import wait_until

ANA_ID = identity(ANA)
DAY = timedelta(days=1)
# Started 28 days before NOW (15 February 2026): the monthly cycle ends, and renews, at NOW.
DUE_NOW = timedelta(days=28)


def keys(ledger):
    return [request["idempotency_key"] for request in ledger.requests]


def test_a_card_subscription_renews_on_its_due_date(rpc, subscribe, ledger, set_clock, event_queue):
    events = event_queue("subscriptions", "subscription_renewed")
    subscription = subscribe("acme-basico", started=DUE_NOW)
    set_clock(NOW - timedelta(seconds=1))
    assert rpc.run_renewals() == {}

    set_clock(NOW)
    assert rpc.run_renewals() == {"renewed": 1}
    assert rpc.run_renewals() == {}

    [charge] = ledger.requests
    assert (charge["idempotency_key"], charge["kind"], charge["cycle_number"], charge["amount_cents"]) == (
        f"renewal:{subscription['id']}:2", "renewal", 2, 2990)
    renewed = rpc.get_subscription(ANA_ID, subscription["id"])
    assert renewed["cycle"] == {"number": 2, "start": "2026-03-15T12:00:00+00:00", "end": "2026-04-15T12:00:00+00:00"}
    assert renewed["next_charge_at"] == "2026-04-15T12:00:00+00:00"
    [event] = envelopes(events, 1)
    assert event["data"] == {
        "subscription_id": subscription["id"], "email": ANA, "actor": "system", "offer_id": "acme-basico",
        "cycle_number": 2, "cycle_start": "2026-03-15T12:00:00+00:00", "cycle_end": "2026-04-15T12:00:00+00:00",
        "amount_cents": 2990, "order_code": ledger.orders[charge["idempotency_key"]]["code"],
    }
    assert rpc.activity(ANA_ID, subscription["id"])[0]["action"] == "renewed"


def test_a_refused_renewal_is_retried_after_one_three_and_five_days_then_canceled(
        rpc, subscribe, ledger, set_clock, event_queue):
    events = event_queue("subscriptions", "subscription_past_due", "subscription_canceled")
    subscription = subscribe("acme-basico", started=DUE_NOW)
    ledger.card_answer = "refused"

    assert rpc.run_renewals() == {"past_due": 1}
    past_due = rpc.get_subscription(ANA_ID, subscription["id"])
    assert (past_due["status"], past_due["next_charge_at"]) == ("past_due", "2026-03-16T12:00:00+00:00")

    for moment, expected in [
        (NOW + DAY - timedelta(seconds=1), {}),
        (NOW + DAY, {"past_due": 1}),
        (NOW + 2 * DAY, {}),
        (NOW + 3 * DAY, {"past_due": 1}),
        (NOW + 5 * DAY, {"canceled": 1}),
        (NOW + 9 * DAY, {}),
    ]:
        set_clock(moment)
        assert rpc.run_renewals() == expected, moment

    subscription_id = subscription["id"]
    assert keys(ledger) == [f"renewal:{subscription_id}:2", f"retry:{subscription_id}:2:1",
                            f"retry:{subscription_id}:2:2", f"retry:{subscription_id}:2:3"]
    canceled = rpc.get_subscription(ANA_ID, subscription_id)
    assert (canceled["status"], canceled["cancel_reason"], canceled["next_charge_at"]) == ("canceled", "non_payment", None)
    published = envelopes(events, 4)
    assert [(event["type"], event["data"].get("next_retry_at")) for event in published] == [
        ("subscription_past_due", "2026-03-16T12:00:00+00:00"),
        ("subscription_past_due", "2026-03-18T12:00:00+00:00"),
        ("subscription_past_due", "2026-03-20T12:00:00+00:00"),
        ("subscription_canceled", None),
    ]
    assert published[0]["data"]["decline_reason"] == "insufficient_funds"
    # Each names the open renewal order the buyer owes: its amount and code.
    assert [(event["data"]["amount_cents"], event["data"]["order_code"]) for event in published[:3]] == [
        (2990, ledger.orders[key]["code"]) for key in keys(ledger)[:3]]
    assert published[3]["data"]["reason"] == "non_payment"


def test_a_renewal_paid_but_not_applied_before_a_cancellation_is_recorded_listed_and_sent(
        rpc, subscribe, ledger, event_queue, rabbit_config):
    """The job's transaction fails after billing charged; the buyer schedules the
    cancellation before the next pass, which ends the subscription: the paid order is
    recorded as payment_not_applied, listed for operators and sent to the merchant."""
    events = event_queue("subscriptions", "subscription_payment_not_applied", "subscription_canceled")
    subscription = subscribe("acme-basico", started=DUE_NOW)
    ledger.lose_batch_answers = True
    assert rpc.run_renewals() == {"left_for_next_pass": 1}
    paid = ledger.orders[f"renewal:{subscription['id']}:2"]
    assert paid["status"] == "paid"
    ledger.lose_batch_answers = False

    rpc.cancel(ANA_ID, subscription["id"], {})
    assert rpc.run_renewals() == {"canceled": 1}
    assert rpc.get_subscription(ANA_ID, subscription["id"])["status"] == "canceled"
    not_applied, canceled = envelopes(events, 2)
    assert (not_applied["type"], not_applied["merchant_id"]) == ("subscription_payment_not_applied", "acme-cursos")
    assert not_applied["data"] == {"subscription_id": subscription["id"], "email": ANA, "actor": "system",
                                   "order_code": paid["code"], "amount_cents": 2990, "kind": "renewal"}
    assert canceled["data"]["reason"] == "buyer"
    [listed] = rpc.payments_not_applied()
    assert {key: listed[key] for key in ("subscription_id", "merchant_id", "email", "order_code", "amount_cents",
                                         "kind")} == {
        "subscription_id": subscription["id"], "merchant_id": "acme-cursos", "email": ANA,
        "order_code": paid["code"], "amount_cents": 2990, "kind": "renewal"}
    assert rpc.payments_not_applied(merchant_id="beta-software") == []

    listing = subprocess.run(
        [sys.executable, "-m", "portalctl.cli", "payments", "not-applied", "--merchant", "acme-cursos"],
        cwd=REPO_ROOT, env={**os.environ, "AMQP_URI": rabbit_config["AMQP_URI"]},
        capture_output=True, text=True, timeout=60,
    )
    assert listing.returncode == 0, listing.stderr
    [line] = listing.stdout.splitlines()
    assert paid["code"] in line and subscription["id"] in line and "2990" in line and "renewal" in line


def test_the_timer_runs_the_job_by_itself(config, container_factory, catalog, subscribe, ledger):
    subscription = subscribe("acme-basico", started=DUE_NOW)
    timed = dict(config, RENEWAL_INTERVAL=0.1)
    container_factory(SubscriptionsService, timed).start()
    with ClusterRpcProxy(config) as proxy:
        wait_until(lambda: proxy.subscriptions.get_subscription(ANA_ID, subscription["id"])["cycle"]["number"] == 2)
    # A pass whose call to billing timed out (a loaded machine) asks again under the same
    # key, which billing answers from the first charge: one key is one charge.
    assert set(keys(ledger)) == {f"renewal:{subscription['id']}:2"}


def test_passes_at_once_in_one_process_charge_each_renewal_once(rpc, cluster, subscribe, ledger):
    subscriptions = [subscribe("acme-basico", started=DUE_NOW) for _ in range(6)]
    ledger.delay = 0.05
    passes = [cluster.subscriptions.run_renewals.call_async() for _ in range(3)]
    results = [call.result() for call in passes]
    assert sum(result.get("renewed", 0) for result in results) == 6
    assert sorted(keys(ledger)) == sorted(f"renewal:{item['id']}:2" for item in subscriptions)


@pytest.mark.skipif(os.environ.get("PORTAL_TEST_DATABASE") != "postgresql", reason="SQLite serves one process")
def test_replicas_never_take_the_same_subscription(config, container_factory, cluster, subscribe, ledger):
    # Two claimers at once: what one holds, the other skips at once (no waiting on the
    # lock: `lock_timeout` would fail it), and takes only once the first lets it go.
    due = [subscribe("acme-basico", started=DUE_NOW)["id"] for _ in range(5)]
    engine = make_engine(config["SUBSCRIPTIONS_DB_URL"])
    with Session(engine) as first, Session(engine) as second:
        second.execute(text("SET lock_timeout = '2s'"))
        assert sorted(item.id for item in store.claim_due_batch(first, NOW, 3)) == sorted(due)[:3]
        assert sorted(item.id for item in store.claim_due_batch(second, NOW, 10)) == sorted(due)[3:]
        first.rollback()
        assert sorted(item.id for item in store.claim_due_batch(second, NOW, 10)) == sorted(due)
    engine.dispose()

    # Two replicas renewing at once charge each subscription once.
    replicas = [container_factory(SubscriptionsService, config) for _ in range(2)]
    for replica in replicas:
        replica.start()
    subscriptions = [subscribe("acme-basico", started=DUE_NOW)["id"] for _ in range(20)]
    ledger.delay = 0.02
    passes = [cluster.subscriptions.run_renewals.call_async() for _ in range(6)]
    renewed = sum(call.result().get("renewed", 0) for call in passes)
    assert renewed == 25
    assert sorted(keys(ledger)) == sorted(f"renewal:{subscription_id}:2" for subscription_id in due + subscriptions)


@pytest.mark.skipif(os.environ.get("PORTAL_TEST_DATABASE") == "postgresql",
                    reason="PostgreSQL's row lock makes the buyer's change wait for the batch instead")
def test_a_batch_whose_subscription_changed_meanwhile_is_left_for_the_next_pass(rpc, cluster, subscribe, ledger):
    """SQLite: the buyer changes the subscription while the job waits on billing; the
    batch's write then finds another version (StaleDataError) and rolls back whole, due
    again at the next pass, which asks billing about the same charge."""
    subscription = subscribe("acme-basico", started=DUE_NOW)
    ledger.hold = eventlet.event.Event()
    renewing = cluster.subscriptions.run_renewals.call_async()
    wait_until(lambda: len(ledger.requests) == 1)
    rpc.change_payment_method(ANA_ID, subscription["id"], {"method": "pix"})
    ledger.hold.send()
    assert renewing.result() == {"left_for_next_pass": 1}
    assert rpc.get_subscription(ANA_ID, subscription["id"])["cycle"]["number"] == 1
    assert rpc.run_renewals() == {"renewed": 1}
    assert keys(ledger) == [f"renewal:{subscription['id']}:2"] * 2
