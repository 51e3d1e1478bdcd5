"""Buyer requests by Idempotency-Key (idempotency.run_once) on a migrated SQLite file,
without the broker, the clock the test's: a repeat answers the stored answer, a key
reused for another request is refused, a failure releases the key, a first attempt
abandoned for ABANDONED_AFTER is taken over, and the first answer stored stands."""
import shutil
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from services.common import migrations
from services.common.db import UnitOfWork, make_engine
from services.common.errors import Conflict, NotFound, RuleRefused, ServiceUnavailable
from services.subscriptions import idempotency
from services.subscriptions.domain.rules import ABANDONED_AFTER
from services.subscriptions.models import BuyerRequest
from support.subscriptions_testkit import BRUNO, NOW, identity

KEY = "key-1"


@pytest.fixture(scope="module")
def migrated(tmp_path_factory):
    """A subscriptions database migrated once for the module, copied by each test."""
    path = tmp_path_factory.mktemp("migrated") / "subscriptions.db"
    migrations.upgrade("subscriptions", f"sqlite:///{path}")
    return path


@pytest.fixture
def db(migrated, tmp_path):
    path = tmp_path / "subscriptions.db"
    shutil.copyfile(migrated, path)
    engine = make_engine(f"sqlite:///{path}")
    yield UnitOfWork(sessionmaker(bind=engine, expire_on_commit=False))
    engine.dispose()


@pytest.fixture
def requests(db):
    """The buyer_requests rows, as committed: (e-mail, scope, key, status, response, refusal)."""

    def rows():
        with db.transaction() as session:
            return [(row.email, row.merchant_scope, row.idempotency_key, row.status, row.response, row.refusal)
                    for row in session.scalars(select(BuyerRequest).order_by(BuyerRequest.id))]

    return rows


class Work:
    """A request's work: answers `{"run": n}` (its n-th run), or raises what `fail` holds
    (then cleared); `during` runs inside it, as if another request came meanwhile."""

    def __init__(self, name="work"):
        self.name = name
        self.runs = 0
        self.fail = None
        self.during = None

    def __call__(self, session):
        self.runs += 1
        if self.during is not None:
            during, self.during = self.during, None
            during()
        if self.fail is not None:
            fail, self.fail = self.fail, None
            raise fail
        return {self.name: self.runs}


@pytest.fixture
def run(db, clock):
    """`run(work, key=KEY, arguments=["sub-1"], who=identity(), operation="cancel")`."""

    def run_once(work, key=KEY, arguments=("sub-1",), who=None, operation="cancel", keep_answer=True):
        return idempotency.run_once(db, clock, who or identity(), key, operation, list(arguments), work,
                                    keep_answer)

    return run_once


def test_without_a_key_every_request_runs_and_nothing_is_kept(run, requests):
    work = Work()
    assert [run(work, key=None), run(work, key=None)] == [{"work": 1}, {"work": 2}]
    assert requests() == []


def test_a_repeat_answers_the_first_answer_without_running_again(run, requests):
    work = Work()
    assert run(work) == {"work": 1}
    assert run(work) == {"work": 1}
    assert work.runs == 1
    assert requests() == [("ana@example.com", "", KEY, "done", {"work": 1}, None)]


def test_a_key_reused_for_another_request_is_refused(run):
    work = Work()
    run(work)
    for changed in ({"arguments": ["sub-2"]}, {"operation": "undo_cancel"}):
        with pytest.raises(RuleRefused) as reused:
            run(work, **changed)
        assert reused.value.code == "idempotency_key_reused"
    assert work.runs == 1


def test_a_key_is_the_buyers_within_a_merchant_scope(run, requests):
    work = Work()
    answers = [run(work, who=who) for who in (identity(), identity(merchant_id="acme-cursos"), identity(BRUNO))]
    assert answers == [{"work": 1}, {"work": 2}, {"work": 3}]
    # Each answered again in its own scope only.
    assert run(work, who=identity(merchant_id="acme-cursos")) == {"work": 2}
    assert [row[:2] for row in requests()] == [
        ("ana@example.com", ""), ("ana@example.com", "acme-cursos"), (BRUNO, "")]


@pytest.mark.parametrize("refusal", [
    RuleRefused("Já cancelada.", code="cancellation_already_scheduled", fields={"subscription_id": ["Já."]}),
    NotFound("Subscription not found."),
], ids=["rule", "not-found"])
def test_a_refusal_is_kept_and_answered_again(run, refusal):
    work = Work()
    work.fail = refusal
    with pytest.raises(type(refusal)):
        run(work)
    with pytest.raises(type(refusal)) as again:
        run(work)
    assert work.runs == 1
    assert (again.value.message, again.value.code, again.value.fields) == (
        refusal.message, refusal.code, refusal.fields)


@pytest.mark.parametrize("failure", [
    RuntimeError("crashed"), ServiceUnavailable("billing did not answer"),
    Conflict("changed meanwhile", code=idempotency.CONCURRENT_CHANGE),
], ids=["crash", "service-unavailable", "concurrent-change"])
def test_a_request_that_failed_otherwise_releases_the_key(run, requests, failure):
    work = Work()
    work.fail = failure
    with pytest.raises(type(failure)):
        run(work)
    assert requests() == []
    assert run(work) == {"work": 2}


def test_a_row_changed_meanwhile_is_a_concurrent_change_that_may_be_repeated(run, requests):
    work = Work()
    work.fail = StaleDataError("the subscription's version moved")
    with pytest.raises(Conflict) as conflict:
        run(work)
    assert conflict.value.code == idempotency.CONCURRENT_CHANGE
    assert requests() == []
    assert run(work) == {"work": 2}


def test_a_repeat_while_the_first_runs_is_told_it_is_in_progress(run, clock):
    first, repeat = Work("first"), Work("repeat")

    def repeat_just_before_abandoned():
        clock.now = NOW + ABANDONED_AFTER - timedelta(microseconds=1)
        with pytest.raises(Conflict) as in_progress:
            run(repeat)
        assert in_progress.value.code == "request_in_progress"

    first.during = repeat_just_before_abandoned
    assert run(first) == {"first": 1}
    assert repeat.runs == 0


def test_an_abandoned_first_attempt_is_taken_over_and_the_first_answer_stored_stands(run, clock, requests):
    first, repeat = Work("first"), Work("repeat")

    def repeat_once_abandoned():
        clock.now = NOW + ABANDONED_AFTER
        assert run(repeat) == {"repeat": 1}

    first.during = repeat_once_abandoned
    # The first attempt finishes after the repeat stored its answer: it answers that one.
    assert run(first) == {"repeat": 1}
    assert run(Work("later")) == {"repeat": 1}
    assert [row[3:5] for row in requests()] == [("done", {"repeat": 1})]


def test_a_refusal_met_after_a_repeat_answered_gives_that_answer(run, clock):
    first, repeat = Work("first"), Work("repeat")

    def repeat_spends_the_quote():
        clock.now = NOW + ABANDONED_AFTER
        run(repeat)

    first.during = repeat_spends_the_quote
    first.fail = RuleRefused("Cotação já usada.", code="quote_spent")
    assert run(first) == {"repeat": 1}


def test_a_first_attempt_whose_repeat_failed_is_undone_and_may_be_repeated(run, clock, requests):
    first, repeat = Work("first"), Work("repeat")
    repeat.fail = RuntimeError("crashed")

    def repeat_fails():
        clock.now = NOW + ABANDONED_AFTER
        with pytest.raises(RuntimeError):
            run(repeat)

    first.during = repeat_fails
    with pytest.raises(Conflict) as undone:
        run(first)
    assert undone.value.code == idempotency.CONCURRENT_CHANGE
    assert requests() == []
    assert run(first) == {"first": 2}


def test_an_answer_not_kept_is_made_again_for_its_repeat(run, requests):
    work = Work()
    assert run(work, keep_answer=False) == {"work": 1}
    assert run(work, keep_answer=False) == {"work": 2}
    assert [row[3:5] for row in requests()] == [("done", None)]
    with pytest.raises(RuleRefused) as reused:
        run(work, arguments=["sub-2"], keep_answer=False)
    assert reused.value.code == "idempotency_key_reused"
