"""(b) The RabbitMQ node restarted in the middle of plan changes: every process
reconnects by itself (none is restarted), `/readyz` and `/status` show the outage and
the recovery, and no event is lost — every event any service committed reaches a
consumer's durable queue, and notifications sends the e-mail of each plan change."""
import time

import eventlet
import requests
from kombu import Connection, Exchange, Queue, binding

from support.auth_testing import rows
from support.workload import buyers_with_subscriptions, change_plan, report, run_concurrently

CHANGES = 30
RESTART_AFTER = 8
CONCURRENCY = 4
SERVICES = ("auth", "subscriptions", "billing", "notifications")
SETTLE_SECONDS = 90


def test_a_broker_restart_under_load_loses_no_event_and_needs_no_restart(fleet, rpc, rabbit_node):
    load = buyers_with_subscriptions(fleet, rpc, 2, CHANGES // 2)
    processes = {name: fleet.running(name) for name in fleet.processes}
    tap = Queue("faults.every-event", durable=True, bindings=[
        binding(Exchange(f"{service}.events", type="topic", durable=True), routing_key="#") for service in SERVICES])
    with Connection(fleet.amqp_uri) as connection:
        tap(connection.default_channel).declare()
    # Read after the queue exists: every event committed from here on is published into it.
    before = {service: max_outbox_id(fleet, service) for service in SERVICES}

    finished, seen, probing = [], [], [True]

    def probe():
        # The last round starts after the fleet is serving again, so it shows the recovery.
        while True:
            last_round = not probing[0]
            for path in ("/readyz", "/status"):
                try:
                    seen.append((path, requests.get(f"{fleet.gateway_url}{path}", timeout=5).status_code))
                except requests.RequestException:
                    seen.append((path, None))
            if last_round:
                return
            eventlet.sleep(0.3)

    def restart_broker():
        while len(finished) < RESTART_AFTER:
            eventlet.sleep(0.05)
        seen.append(("restart", "begins"))
        rabbit_node.restart()
        seen.append(("restart", "done"))

    def one(item):
        outcome = change_plan(fleet, *item, timeout=3 * fleet.rpc_timeout, retry_for=150)
        finished.append(outcome)
        return outcome

    prober, restarter = eventlet.spawn(probe), eventlet.spawn(restart_broker)
    outcomes = run_concurrently(one, load, CONCURRENCY)
    restarter.wait()
    fleet.wait_until_serving()
    probing[0] = False
    prober.wait()

    # Every event committed since the load began, from every outbox, published...
    deadline = time.monotonic() + SETTLE_SECONDS
    while time.monotonic() < deadline and any(unpublished(fleet, service) for service in SERVICES):
        time.sleep(0.5)
    committed = {row["event_id"]: row["event_type"] for service in SERVICES
                 for row in rows(fleet.database_urls[service], "outbox") if row["id"] > before[service]}
    # ...and in the consumer's queue.
    delivered = drain(fleet, tap)
    plan_changes = {event_id for event_id, event_type in committed.items()
                    if event_type == "subscription_plan_changed"}
    wait_for_emails(fleet, plan_changes)
    emailed = {row["event_id"] for row in rows(fleet.database_urls["notifications"], "outgoing_emails")
               if row["status"] == "sent"}

    failed = [outcome for outcome in outcomes if not outcome.succeeded]
    lost = set(committed) - set(delivered)
    restarted = [name for name, running in processes.items() if fleet.running(name) != running]
    outage = after_restart_began(seen)
    report("(b) RabbitMQ restart during 30 plan changes", events=len(committed), lost=len(lost),
           duplicated=len(delivered) - len(set(delivered)), failed=len(failed),
           retried=sum(outcome.retries for outcome in outcomes), emails_missing=len(plan_changes - emailed),
           processes_restarted=len(restarted))

    assert not failed, [outcome.failure for outcome in failed][:5]
    assert len(plan_changes) == CHANGES
    assert not lost, {event_id: committed[event_id] for event_id in lost}
    assert plan_changes <= emailed
    assert not restarted
    for path in ("/readyz", "/status"):
        statuses = [status for probed, status in outage if probed == path]
        assert 503 in statuses, (path, statuses)
        assert statuses[-1] == 200, (path, statuses)


def max_outbox_id(fleet, service):
    return max((row["id"] for row in rows(fleet.database_urls[service], "outbox")), default=0)


def unpublished(fleet, service):
    return [row for row in rows(fleet.database_urls[service], "outbox") if row["published_at"] is None]


def drain(fleet, queue):
    """The event ids in the queue, each once per copy, and the queue gone."""
    found = []
    with Connection(fleet.amqp_uri) as connection:
        channel = connection.default_channel
        while (message := channel.basic_get(queue.name, no_ack=True)) is not None:
            found.append(message.properties["message_id"])
        queue(channel).delete()
    return found


def wait_for_emails(fleet, event_ids, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sent = {row["event_id"] for row in rows(fleet.database_urls["notifications"], "outgoing_emails")
                if row["status"] == "sent"}
        if event_ids <= sent:
            return
        time.sleep(0.5)


def after_restart_began(seen):
    start = seen.index(("restart", "begins"))
    return [entry for entry in seen[start:] if entry[0] != "restart"]
