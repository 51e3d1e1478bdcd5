"""A subscriptions process killed after its change committed and before the event was
published: the event still arrives, from the next process, and the redelivered
request that caused it changes nothing twice.

The process runs as `nameko run` does, its broker connection through a loopback
proxy. The proxy holds what the process sends (its RPC answer, its publish), so the
change commits while nothing leaves; then the process is killed and what it held is
dropped."""
import os
import signal
import subprocess
import sys
import time
import uuid
from queue import Empty

import pytest
from services.common.rpc import ClusterRpcProxy
from sqlalchemy import func, select

from services.common.config import REPO_ROOT
from services.common.db import make_engine
from services.subscriptions.domain import add_months
from services.subscriptions.models import Subscription, outbox
from support.subscriptions_testkit import NOW
from support.waiting import wait_until



@pytest.fixture
def subscriptions_db(migrated_db_url):
    url = migrated_db_url("subscriptions")
    engine = make_engine(url)
    yield url, engine
    engine.dispose()


@pytest.fixture
def start_subscriptions(tmp_path, subscriptions_db):
    """`start(amqp_uri)`: a subscriptions process of its own (killed at the end)."""
    url, _engine = subscriptions_db
    started = []

    def start(amqp_uri):
        env = {**os.environ, "AMQP_URI": amqp_uri, "SUBSCRIPTIONS_DB_URL": url,
               "OUTBOX_POLL_INTERVAL": "0.1", "RENEWAL_INTERVAL": "3600"}
        log = (tmp_path / f"subscriptions-{len(started)}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "nameko", "run", "--config", "config.yaml",
             "services.subscriptions.service:SubscriptionsService"],
            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()


def wait_until_answering(rpc, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return rpc.subscriptions.ping()
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def taken(queue, wait):
    """Every message that reaches `queue` within `wait` s of quiet."""
    found = []
    while True:
        try:
            found.append(queue.get(timeout=wait))
        except Empty:
            return found


def count(engine, query):
    with engine.connect() as connection:
        return connection.execute(query).scalar_one()


def test_an_event_committed_by_a_killed_process_is_published_by_the_next(
        rabbit_config, broker_proxy, start_subscriptions, subscriptions_db, event_queue):
    _url, engine = subscriptions_db
    proxy, proxied_uri = broker_proxy
    created = event_queue("subscriptions", "subscription_created")
    external_id = f"crash-{uuid.uuid4().hex[:8]}"
    first = start_subscriptions(proxied_uri)

    with ClusterRpcProxy({"AMQP_URI": rabbit_config["AMQP_URI"]}, timeout=30) as rpc:
        wait_until_answering(rpc)
        rpc.subscriptions.upsert_merchant({"id": "acme-cursos", "name": "Acme Cursos"})
        rpc.subscriptions.upsert_offer({"merchant_id": "acme-cursos", "id": "acme-basico", "product_name": "Curso",
                                        "plan_name": "Básico", "price_cents": 2990, "periodicity_months": 1})
        unpublished = select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
        # The offer's own event (offer_changed) out first: the one held below is the subscription's.
        wait_until(lambda: count(engine, unpublished) == 0, message="offer_changed published")

        proxy.hold()
        rpc.subscriptions.create_subscription.call_async({
            "merchant_id": "acme-cursos", "external_id": external_id, "offer_id": "acme-basico",
            "email": "ana@example.com", "status": "active", "cycle_number": 1,
            "cycle_start": NOW.isoformat(), "cycle_end": add_months(NOW, 1).isoformat(),
            "payment": {"method": "boleto"},
        })
        deadline = time.monotonic() + 30
        while count(engine, unpublished) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert count(engine, unpublished) == 1, "the change never committed"

        # Committed, not published: the process dies now, and what it was sending with it.
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        proxy.cut()
        proxy.release()
        proxy.restore()
        assert taken(created, wait=1) == []

        start_subscriptions(proxied_uri)
        arrived = [created.get(timeout=60)]
        # The unanswered request comes back to the new process too: it must not make a second subscription.
        arrived += taken(created, wait=3)

    ids = {message.payload["event_id"] for message in arrived}
    rows = count(engine, select(func.count()).select_from(Subscription).where(Subscription.external_id == external_id))
    print(f"\nkilled between commit and publish: {len(arrived)} event(s) arrived, {len(ids)} distinct, "
          f"{rows} subscription row(s), {count(engine, unpublished)} unpublished")
    assert [message.payload["data"]["external_id"] for message in arrived][:1] == [external_id]
    assert len(ids) == 1 and rows == 1
    assert count(engine, unpublished) == 0
