"""The renewal job, driven by the shared clock (CLOCK_FILE): renews, fails into
past_due, retries 1, 3 and 5 days after the first failed attempt, then cancels."""
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from services.common.rpc import ClusterRpcProxy
from sqlalchemy import text
from sqlalchemy.orm import Session

from services.common.config import REPO_ROOT
from services.common.db import make_engine
from services.subscriptions import store
from services.subscriptions.service import SubscriptionsService
from support.subscriptions_testkit import ANA, ANA_CARD, NOW, envelopes, identity
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


def test_a_renewal_taken_up_days_late_is_charged_once_and_retried_from_that_attempt(
        rpc, subscribe, ledger, set_clock, event_queue):
    """A cycle that ended 3 days before the pass: one charge in that pass, then the
    retries 1, 3 and 5 days after it, one charge (and one event) each."""
    events = event_queue("subscriptions", "subscription_past_due", "subscription_canceled")
    subscription = subscribe("acme-basico", started=DUE_NOW + 3 * DAY)
    ledger.card_answer = "refused"

    assert rpc.run_renewals() == {"past_due": 1}
    assert rpc.run_renewals() == {}
    assert len(ledger.requests) == 1
    past_due = rpc.get_subscription(ANA_ID, subscription["id"])
    assert (past_due["status"], past_due["next_charge_at"]) == ("past_due", (NOW + DAY).isoformat())
    for moment, expected in [
        (NOW + DAY - timedelta(seconds=1), {}),
        (NOW + DAY, {"past_due": 1}),
        (NOW + 3 * DAY - timedelta(seconds=1), {}),
        (NOW + 3 * DAY, {"past_due": 1}),
        (NOW + 5 * DAY, {"canceled": 1}),
    ]:
        set_clock(moment)
        assert rpc.run_renewals() == expected, moment
    assert len(ledger.requests) == 4
    published = envelopes(events, 4)
    assert [(event["type"], event["data"].get("next_retry_at")) for event in published] == [
        ("subscription_past_due", (NOW + DAY).isoformat()),
        ("subscription_past_due", (NOW + 3 * DAY).isoformat()),
        ("subscription_past_due", (NOW + 5 * DAY).isoformat()),
        ("subscription_canceled", None),
    ]


def test_a_subscription_a_cycle_overdue_pays_one_cycle_from_the_attempt(rpc, subscribe, ledger):
    """Its cycle ended over a month before the pass: one cycle is charged, starting at
    the attempt; the month missed is never billed."""
    subscription = subscribe("acme-basico", started=DUE_NOW + 40 * DAY)
    assert rpc.run_renewals() == {"renewed": 1}
    assert rpc.run_renewals() == {}
    assert len(ledger.requests) == 1
    renewed = rpc.get_subscription(ANA_ID, subscription["id"])
    assert renewed["cycle"] == {"number": 2, "start": NOW.isoformat(), "end": "2026-04-15T12:00:00+00:00"}


def test_a_card_billing_cannot_use_makes_it_past_due_in_one_pass_and_ends_it_after_the_retries(
        rpc, subscribe, ledger, set_clock, event_queue):
    """Never retried forever in silence: past due at once, told by subscription_past_due
    (the buyer's e-mail, the merchant's webhook), then retried and canceled as a decline."""
    events = event_queue("subscriptions", "subscription_past_due", "subscription_canceled")
    subscription = subscribe("acme-basico", started=DUE_NOW)
    ledger.unusable_tokens.add(ANA_CARD["token"])

    assert rpc.run_renewals() == {"past_due": 1}
    past_due = rpc.get_subscription(ANA_ID, subscription["id"])
    assert (past_due["status"], past_due["next_charge_at"]) == ("past_due", (NOW + DAY).isoformat())
    [event] = envelopes(events, 1)
    assert event["data"] == {
        "subscription_id": subscription["id"], "email": ANA, "actor": "system", "cycle_number": 2, "attempts": 1,
        "next_retry_at": (NOW + DAY).isoformat(), "decline_reason": "payment_method_unusable",
        "amount_cents": 2990, "order_code": None,
    }
    assert rpc.run_renewals() == {}
    for moment, expected in [(NOW + DAY, {"past_due": 1}), (NOW + 3 * DAY, {"past_due": 1}),
                             (NOW + 5 * DAY, {"canceled": 1})]:
        set_clock(moment)
        assert rpc.run_renewals() == expected, moment
    assert [event["type"] for event in envelopes(events, 3)] == [
        "subscription_past_due", "subscription_past_due", "subscription_canceled"]
    assert rpc.get_subscription(ANA_ID, subscription["id"])["cancel_reason"] == "non_payment"
    assert ledger.orders == {}


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


def test_a_cancellation_with_no_charge_made_records_nothing_not_applied(rpc, subscribe, ledger):
    subscription = subscribe("acme-basico", started=DUE_NOW + DAY)
    rpc.cancel(ANA_ID, subscription["id"], {})
    assert rpc.run_renewals() == {"canceled": 1}
    assert rpc.payments_not_applied() == []
    assert ledger.requests == []


def test_a_retry_that_is_paid_makes_it_active_on_its_usual_dates(rpc, subscribe, ledger, set_clock):
    subscription = subscribe("acme-basico", started=DUE_NOW)
    ledger.card_answer = "refused"
    rpc.run_renewals()
    ledger.card_answer = "paid"
    set_clock(NOW + DAY)
    assert rpc.run_renewals() == {"renewed": 1}
    renewed = rpc.get_subscription(ANA_ID, subscription["id"])
    assert renewed["status"] == "active"
    assert renewed["cycle"] == {"number": 2, "start": "2026-03-15T12:00:00+00:00", "end": "2026-04-15T12:00:00+00:00"}


def test_a_registered_past_due_subscription_is_retried_a_day_after_its_due_date(rpc, subscribe, ledger, set_clock):
    subscription = subscribe("acme-basico", started=DUE_NOW, status="past_due")
    assert rpc.run_renewals() == {}
    set_clock(NOW + DAY)
    assert rpc.run_renewals() == {"renewed": 1}
    assert keys(ledger) == [f"retry:{subscription['id']}:2:1"]


def test_an_unknown_card_answer_is_asked_again_under_the_same_key(rpc, subscribe, ledger, set_clock):
    subscription = subscribe("acme-basico", started=DUE_NOW)
    ledger.card_answer = "pending_confirmation"
    assert rpc.run_renewals() == {"waiting": 1}
    assert rpc.get_subscription(ANA_ID, subscription["id"])["status"] == "active"

    key = f"renewal:{subscription['id']}:2"
    ledger.orders[key]["status"] = "paid"  # billing's reconciler settled it
    set_clock(NOW + timedelta(hours=1))
    assert rpc.run_renewals() == {"renewed": 1}
    assert keys(ledger) == [key, key]


def test_a_renewal_paid_in_billings_answer_to_the_job_is_left_to_the_job(
        rpc, subscribe, ledger, set_clock, billing_event, db_rows):
    """billing's `order_paid` for a renewal it settled in its answer to the renewal job
    is the job's to apply (from that answer, or by asking again under the same key):
    the handler writes nothing for it. One settled later is applied by the handler."""
    left, applied = (subscribe("acme-basico", started=DUE_NOW, payment={"method": "boleto"}) for _ in range(2))
    set_clock(NOW - 3 * DAY)
    assert rpc.run_renewals() == {"waiting": 2}
    orders = {request["subscription_id"]: ledger.orders[request["idempotency_key"]] for request in ledger.requests}

    billing_event("order_paid", orders[left["id"]], settled_at_charge=True)
    billing_event("order_paid", orders[applied["id"]])

    wait_until(lambda: rpc.get_subscription(ANA_ID, applied["id"])["cycle"]["number"] == 2)
    assert rpc.get_subscription(ANA_ID, left["id"])["cycle"]["number"] == 1
    assert db_rows.inbox_size() == 1


def test_a_boleto_renewal_is_issued_ahead_and_settled_when_paid(rpc, subscribe, ledger, set_clock, billing_event):
    subscription = subscribe("acme-basico", started=DUE_NOW, payment={"method": "boleto"})
    set_clock(NOW - 3 * DAY - timedelta(seconds=1))
    assert rpc.run_renewals() == {}
    set_clock(NOW - 3 * DAY)
    assert rpc.run_renewals() == {"waiting": 1}
    assert rpc.run_renewals() == {}

    [charge] = ledger.requests
    assert (charge["method"], charge["due_at"], charge["payment_token"]) == ("boleto", NOW.isoformat(), None)
    assert rpc.activity(ANA_ID, subscription["id"])[0]["action"] == "renewal_order_issued"

    billing_event("order_paid", ledger.orders[charge["idempotency_key"]])
    wait_until(lambda: rpc.get_subscription(ANA_ID, subscription["id"])["cycle"]["number"] == 2)
    renewed = rpc.get_subscription(ANA_ID, subscription["id"])
    assert (renewed["status"], renewed["cycle"]["start"]) == ("active", NOW.isoformat())
    # The next renewal's boleto is issued three days before the new cycle ends.
    set_clock(NOW)
    assert rpc.run_renewals() == {}
    assert len(ledger.requests) == 1


def test_an_unpaid_boleto_is_never_issued_twice_and_the_subscription_ends(rpc, subscribe, ledger, set_clock):
    subscription = subscribe("acme-basico", started=DUE_NOW, payment={"method": "pix"})
    results = []
    for moment in (NOW - 3 * DAY, NOW, NOW + DAY, NOW + 3 * DAY, NOW + 5 * DAY):
        set_clock(moment)
        results.append(rpc.run_renewals())
    assert results == [{"waiting": 1}, {"past_due": 1}, {"past_due": 1}, {"past_due": 1}, {"canceled": 1}]
    assert set(keys(ledger)) == {f"renewal:{subscription['id']}:2"}
    assert len(ledger.orders) == 1
    assert rpc.get_subscription(ANA_ID, subscription["id"])["cancel_reason"] == "non_payment"


def test_a_scheduled_downgrade_takes_effect_with_the_renewal(rpc, subscribe, ledger, set_clock, event_queue):
    events = event_queue("subscriptions", "subscription_plan_changed", "subscription_renewed")
    subscription = subscribe("acme-premium", started=DUE_NOW)
    set_clock(NOW - DAY)
    quote = rpc.quote_plan_change(ANA_ID, subscription["id"], "acme-basico")
    rpc.change_plan(ANA_ID, subscription["id"], quote["quote_id"], 1)
    assert rpc.run_renewals() == {}

    set_clock(NOW)
    assert rpc.run_renewals() == {"renewed": 1}
    [charge] = ledger.requests
    assert charge["amount_cents"] == 2990
    renewed = rpc.get_subscription(ANA_ID, subscription["id"])
    assert (renewed["offer_id"], renewed["pending_plan_change"]) == ("acme-basico", None)
    changed, renewal = envelopes(events, 2)
    assert (changed["type"], changed["data"]["kind"], changed["data"]["actor"]) == (
        "subscription_plan_changed", "scheduled", "system")
    assert (renewal["type"], renewal["data"]["offer_id"]) == ("subscription_renewed", "acme-basico")


def test_a_cancellation_at_period_end_ends_it_then_without_a_charge(rpc, subscribe, ledger, set_clock):
    subscription = subscribe("acme-basico", started=DUE_NOW, payment={"method": "boleto"})
    set_clock(NOW - 5 * DAY)
    rpc.cancel(ANA_ID, subscription["id"], {"reason": "switching_service"})
    set_clock(NOW - 3 * DAY)
    assert rpc.run_renewals() == {}  # no boleto for a cycle that will not come
    set_clock(NOW)
    assert rpc.run_renewals() == {"canceled": 1}
    ended = rpc.get_subscription(ANA_ID, subscription["id"])
    assert (ended["status"], ended["cancel_reason"], ended["cancel_feedback"]) == ("canceled", "buyer", "switching_service")
    assert ledger.requests == []


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
