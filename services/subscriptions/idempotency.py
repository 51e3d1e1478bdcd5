"""Buyer requests made with an `Idempotency-Key`: each runs once per buyer and key.

A key is the buyer's within the session's merchant scope (domain.request_owner): the
same key sent from another scope is another request, and never sees this one's answer.

The key is claimed (committed, status running) before the work starts; the work's
transaction marks it done with the response, so both commit together. A business
refusal is stored too and answered again; a request that failed otherwise (a service
did not answer, a crash) releases the key, so repeating it runs it again — its
charges carry their own keys in billing, so running again never charges twice.

A repeat may take over a first attempt that looks abandoned but still runs. The first
answer stored is the request's answer: a later attempt neither replaces nor releases
it, and answers it instead of its own.

An answer holding a live secret (billing's card-entry link) is not stored: a repeat of
that request, once it succeeded, runs it again for a fresh answer (each link works once).
"""
from contextlib import contextmanager

from sqlalchemy.orm.exc import StaleDataError

from services.common import errors
from services.common.errors import Conflict, RuleRefused
from services.subscriptions import domain, store

# The refusals worth answering again: what the request asked for was refused as such.
STORED_REFUSALS = {cls.__name__: cls for cls in errors.EXPECTED_ERRORS}
# Not stored: the request changed nothing and may simply be repeated.
CONCURRENT_CHANGE = "concurrent_change"


def run_once(db, clock, identity, idempotency_key, operation, arguments, work, keep_answer=True):
    """`work(session)` in one transaction, at most once for `identity`'s `idempotency_key`;
    `clock()` is now (the handlers' `Ports.clock`).

    A repeat with the same `operation` and `arguments` answers what the first answered
    (with `keep_answer=False`, a success is not stored, and its repeat answers `work`
    run again); other arguments under the same key are refused (422
    `idempotency_key_reused`); a repeat while the first still runs answers 409
    `request_in_progress`.
    """
    if idempotency_key is None:
        return _run(db, work)
    owner = domain.request_owner(identity)
    fingerprint = domain.request_fingerprint(operation, arguments)
    answer_again = None if keep_answer else (lambda: _run(db, work))

    def claim(session):
        now = clock()
        found = store.buyer_request(session, owner, idempotency_key)
        if found is None:
            return (store.start_buyer_request(session, owner, idempotency_key, operation, fingerprint, now), now), None
        decision = domain.repeated_request(found.fingerprint, found.status, found.started_at, fingerprint, now)
        if decision == domain.KEY_REUSED:
            raise RuleRefused(
                "Esta Idempotency-Key já foi usada em outra requisição.", code="idempotency_key_reused",
            )
        if decision == domain.REPLAY:
            return None, found
        if decision == domain.TAKE_OVER and store.take_over_buyer_request(session, found, now):
            return (found.id, now), None
        raise Conflict(
            "A primeira requisição com esta Idempotency-Key ainda está em andamento.", code="request_in_progress",
        )

    claimed, done = db.retry_on_conflict(claim)
    if done is not None:
        return _replay(done, answer_again)
    # The attempt is told apart from a repeat that took the request over by when it claimed it.
    request_id, claimed_at = claimed
    try:
        with _concurrent_change_refused():
            with db.transaction() as session:
                response = work(session)
                kept = response if keep_answer else None
                if not store.finish_buyer_request(session, request_id, clock(), response=kept):
                    raise _AnsweredFirst()
        return response
    except _AnsweredFirst:
        stored = _stored_answer(db, request_id)
        if stored is None:
            # Released by an attempt that failed: this one was undone, and may be repeated.
            raise _concurrent_change() from None
        return _replay(stored, answer_again)
    except tuple(STORED_REFUSALS.values()) as refusal:
        # A repeat that took over a first attempt still running may find the quote
        # spent, the subscription changed, by that very first attempt: then the first
        # attempt's answer is the request's answer, not this refusal.
        if refusal.code == CONCURRENT_CHANGE:
            _forget(db, request_id, claimed_at)
        else:
            with db.transaction() as session:
                store.finish_buyer_request(session, request_id, clock(), refusal=_stored_refusal(refusal))
        stored = _stored_answer(db, request_id)
        if stored is not None and stored.refusal != _stored_refusal(refusal):
            return _replay(stored, answer_again)
        raise
    except BaseException:
        _forget(db, request_id, claimed_at)
        raise


class _AnsweredFirst(Exception):
    """Another attempt at the request stored its answer first: this one's work is undone."""


def _forget(db, request_id, claimed_at):
    """Release the key: the request did not happen, and may be repeated (unless a
    repeat took it over meanwhile: that one still runs it)."""
    with db.transaction() as session:
        store.forget_buyer_request(session, request_id, claimed_at)


def _stored_refusal(refusal):
    return {"type": type(refusal).__name__, **refusal.to_dict()}


def _stored_answer(db, request_id):
    """The request's row if an attempt stored its answer, else None."""
    with db.transaction() as session:
        found = store.buyer_request_by_id(session, request_id)
    return found if found is not None and found.status == "done" else None


def _run(db, work):
    with _concurrent_change_refused():
        with db.transaction() as session:
            return work(session)


@contextmanager
def _concurrent_change_refused():
    try:
        yield
    except StaleDataError:
        # SQLite only: another request changed the subscription meanwhile (models.py).
        raise _concurrent_change() from None


def _concurrent_change():
    return Conflict(
        "A assinatura foi alterada por outra operação ao mesmo tempo. Tente novamente.", code=CONCURRENT_CHANGE,
    )


def _replay(done, answer_again):
    """The stored answer, or (`answer_again` given: none was stored) a fresh one."""
    if done.refusal is None:
        return done.response if answer_again is None else answer_again()
    refusal = done.refusal
    raise STORED_REFUSALS[refusal["type"]](refusal["message"], code=refusal["code"], fields=refusal["fields"])
