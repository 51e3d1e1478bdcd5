"""Buyer POSTs with an Idempotency-Key: the same request answers the same, once."""
from datetime import timedelta

import eventlet
import pytest
from nameko.exceptions import RemoteError
from sqlalchemy import select

from services.common.db import make_engine
from services.common.errors import Conflict, NotFound, RuleRefused, ValidationFailed
from services.subscriptions.domain import ABANDONED_AFTER
from services.subscriptions.models import BuyerRequest
from support import secret_scan
from support.subscriptions_testkit import ANA, BRUNO, NOW, FakeBilling, identity
from support.waiting import wait_until

ANA_ID = identity(ANA)


@pytest.fixture
def upgrade(rpc, subscribe):
    """A monthly subscription and a quote to upgrade it."""
    subscription = subscribe("acme-basico")
    quote = rpc.quote_plan_change(ANA_ID, subscription["id"], "acme-premium")
    return subscription["id"], quote["quote_id"]


def test_a_repeat_answers_the_stored_response_and_charges_once(rpc, upgrade, ledger, db_rows):
    subscription_id, quote_id = upgrade
    first = rpc.change_plan(ANA_ID, subscription_id, quote_id, 1, idempotency_key="key-1")
    repeat = rpc.change_plan(ANA_ID, subscription_id, quote_id, 1, idempotency_key="key-1")

    assert repeat == first
    assert first["subscription"]["offer_id"] == "acme-premium"
    assert len(ledger.requests) == 1
    assert [action for _, action in db_rows.activity(subscription_id)].count("plan_changed") == 1
    # Without the key, the same request is a new one: the quote is spent.
    with pytest.raises(Conflict) as failure:
        rpc.change_plan(ANA_ID, subscription_id, quote_id, 1)
    assert failure.value.code == "quote_expired"


def test_the_same_key_with_another_body_is_refused(rpc, upgrade, ledger):
    subscription_id, quote_id = upgrade
    rpc.cancel(ANA_ID, subscription_id, {"reason": "other"}, idempotency_key="key-2")
    with pytest.raises(RuleRefused) as failure:
        rpc.cancel(ANA_ID, subscription_id, {"reason": "too_expensive"}, idempotency_key="key-2")
    assert failure.value.code == "idempotency_key_reused"
    with pytest.raises(RuleRefused) as failure:
        rpc.change_plan(ANA_ID, subscription_id, quote_id, 1, idempotency_key="key-2")
    assert failure.value.code == "idempotency_key_reused"
    assert ledger.requests == []


def test_a_repeat_while_the_first_still_runs_is_told_so(rpc, cluster, upgrade, ledger):
    subscription_id, quote_id = upgrade
    ledger.hold = eventlet.Event()
    first = cluster.subscriptions.change_plan.call_async(ANA_ID, subscription_id, quote_id, 1, idempotency_key="key-3")
    wait_until(lambda: len(ledger.requests) == 1)

    with pytest.raises(Conflict) as failure:
        rpc.change_plan(ANA_ID, subscription_id, quote_id, 1, idempotency_key="key-3")
    assert failure.value.code == "request_in_progress"

    ledger.hold.send()
    answer = first.result()
    assert rpc.change_plan(ANA_ID, subscription_id, quote_id, 1, idempotency_key="key-3") == answer
    assert len(ledger.requests) == 1


def test_a_repeat_that_took_over_a_first_attempt_still_running_answers_its_success(
        rpc, cluster, upgrade, ledger, set_clock, config, db_rows):
    """The first confirmation waits on billing so long that it looks abandoned; the
    buyer's repeat takes it over, and then the first one succeeds after all. Both, and
    every later repeat, answer that success, with its one order; nothing is charged
    twice, and the quote spent by the first is never a 409 to its own repeats."""
    subscription_id, quote_id = upgrade
    ledger.hold = eventlet.Event()
    first = cluster.subscriptions.change_plan.call_async(ANA_ID, subscription_id, quote_id, 1, idempotency_key="key-7")
    wait_until(lambda: len(ledger.requests) == 1)

    taken_over_at = set_clock(NOW + ABANDONED_AFTER + timedelta(seconds=1))
    repeat = cluster.subscriptions.change_plan.call_async(ANA_ID, subscription_id, quote_id, 1, idempotency_key="key-7")
    engine = make_engine(config["SUBSCRIPTIONS_DB_URL"])
    try:
        wait_until(lambda: claimed_at(engine, "key-7") == taken_over_at)
    finally:
        engine.dispose()
    ledger.hold.send()

    answer = first.result()
    assert answer["subscription"]["offer_id"] == "acme-premium"
    assert repeat.result() == answer
    assert rpc.change_plan(ANA_ID, subscription_id, quote_id, 1, idempotency_key="key-7") == answer
    assert len(ledger.orders) == 1
    assert [action for _, action in db_rows.activity(subscription_id)].count("plan_changed") == 1


def claimed_at(engine, key):
    with engine.connect() as connection:
        return connection.execute(
            select(BuyerRequest.started_at).where(BuyerRequest.idempotency_key == key)).scalar_one_or_none()


def test_a_refusal_is_answered_again_without_charging_again(rpc, upgrade, ledger):
    subscription_id, quote_id = upgrade
    ledger.card_answer = "refused"
    for _ in range(2):
        with pytest.raises(RuleRefused) as failure:
            rpc.change_plan(ANA_ID, subscription_id, quote_id, 1, idempotency_key="key-4")
        assert failure.value.code == "charge_declined"
        ledger.card_answer = "paid"
    assert len(ledger.requests) == 1


def test_a_request_that_failed_midway_can_be_repeated(rpc, upgrade, ledger):
    subscription_id, quote_id = upgrade
    ledger.card_answer = "error"
    with pytest.raises(RemoteError):
        rpc.change_plan(ANA_ID, subscription_id, quote_id, 1, idempotency_key="key-5")
    ledger.card_answer = "paid"
    result = rpc.change_plan(ANA_ID, subscription_id, quote_id, 1, idempotency_key="key-5")
    assert result["subscription"]["offer_id"] == "acme-premium"
    # Both attempts asked billing under the one key of the quote.
    assert {request["idempotency_key"] for request in ledger.requests} == {f"plan_change:{quote_id}"}


def test_a_repeat_of_a_confirmation_its_payment_applied_meanwhile_answers_the_change(
        rpc, upgrade, ledger, billing_event, db_rows):
    """billing charged, but its answer came too late: the buyer got no answer, and the
    payment's order_paid applied the change. The buyer's repeat answers that change,
    with the one order; a new confirmation of the quote is refused as spent."""
    subscription_id, quote_id = upgrade
    ledger.card_answer = "error"  # what subscriptions sees of an answer that never came
    with pytest.raises(RemoteError):
        rpc.change_plan(ANA_ID, subscription_id, quote_id, 1, idempotency_key="key-6")
    ledger.card_answer = "paid"
    order = FakeBilling().charge(ledger.requests[0])  # what billing had done meanwhile
    billing_event("order_paid", order)
    wait_until(lambda: rpc.get_subscription(ANA_ID, subscription_id)["offer_id"] == "acme-premium")

    repeat = rpc.change_plan(ANA_ID, subscription_id, quote_id, 1, idempotency_key="key-6")
    assert repeat["subscription"]["offer_id"] == "acme-premium"
    assert repeat["order"]["code"] == order["code"]
    assert len(ledger.orders) == 1
    assert [action for _, action in db_rows.activity(subscription_id)].count("plan_changed") == 1
    with pytest.raises(Conflict) as failure:
        rpc.change_plan(ANA_ID, subscription_id, quote_id, 1)
    assert failure.value.code == "quote_expired"


def test_keys_belong_to_one_buyer(rpc, subscribe):
    ana = subscribe("acme-basico")
    bruno = subscribe("acme-basico", email=BRUNO)
    rpc.cancel(ANA_ID, ana["id"], {}, idempotency_key="same-key")
    canceled = rpc.cancel(identity(BRUNO), bruno["id"], {}, idempotency_key="same-key")
    assert canceled["subscription"]["cancel_at_period_end"] is True


def test_a_key_replays_only_in_the_merchant_scope_that_sent_it(rpc, subscribe):
    """Ana's own login, her Acme SSO session and her Beta one send the same key: three
    requests. The Beta session never gets the Acme quote another scope stored (it
    cannot see Acme's subscription); each scope's repeat still answers its own."""
    subscription_id = subscribe("acme-basico")["id"]
    own, acme, beta = identity(ANA), identity(ANA, "acme-cursos"), identity(ANA, "beta-software")

    def quote(scope):
        return rpc.quote_plan_change(scope, subscription_id, "acme-premium", idempotency_key="shared-key")

    from_acme = quote(acme)
    with pytest.raises(NotFound):
        quote(beta)
    from_own = quote(own)
    assert from_own["quote_id"] != from_acme["quote_id"]

    assert quote(acme) == from_acme
    assert quote(own) == from_own
    with pytest.raises(NotFound):
        quote(beta)


def test_a_card_entry_link_is_never_stored_and_a_repeat_gets_a_fresh_one(rpc, subscribe, ledger, config):
    """billing's ticket is a live secret: the stored request keeps no answer, and its
    repeat asks billing again. Another scope's repeat is refused, never handed a link."""
    subscription_id = subscribe("acme-basico")["id"]
    first = rpc.begin_card_update(ANA_ID, subscription_id, idempotency_key="card-1")
    repeat = rpc.begin_card_update(ANA_ID, subscription_id, idempotency_key="card-1")
    assert repeat["form_url"] != first["form_url"]
    assert len(ledger.tickets) == 2
    with pytest.raises(NotFound):
        rpc.begin_card_update(identity(ANA, "beta-software"), subscription_id, idempotency_key="card-1")
    assert len(ledger.tickets) == 2

    assert stored_requests(config, "card-1") == [
        ("", "done", None, None), ("beta-software", "done", None, "not_found")]
    assert secret_scan.scan_database(config["SUBSCRIPTIONS_DB_URL"]) == []


def stored_requests(config, key):
    """(merchant scope, status, response, refusal code) of each request made with `key`."""
    engine = make_engine(config["SUBSCRIPTIONS_DB_URL"])
    try:
        with engine.connect() as connection:
            rows = connection.execute(select(BuyerRequest.__table__).where(BuyerRequest.idempotency_key == key)
                                      .order_by(BuyerRequest.id)).mappings().all()
    finally:
        engine.dispose()
    return [(row["merchant_scope"], row["status"], row["response"], (row["refusal"] or {}).get("code"))
            for row in rows]


def test_a_key_must_be_short_visible_text(rpc, upgrade):
    subscription_id, quote_id = upgrade
    for bad in ("", "a" * 256, "with space", 42):
        with pytest.raises(ValidationFailed) as failure:
            rpc.change_plan(ANA_ID, subscription_id, quote_id, 1, idempotency_key=bad)
        assert set(failure.value.fields) == {"idempotency_key"}
