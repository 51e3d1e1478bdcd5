"""(d) SIGTERM to one of two processes — a service's or the gateway's — while buyers
read and change their subscriptions, with clients that never retry: not one request
fails. The stopping process takes no new work, finishes what it was doing (the
gateway answers what its connections already asked and tells them to close), and
exits cleanly; the other takes over, and a new one joins."""
import signal

import eventlet
import pytest
import requests

from support.workload import buyers_with_subscriptions, change_plan, client_of, report, run_concurrently

CHANGES = 40
STOP_AFTER = 10
CONCURRENCY = 6


@pytest.mark.parametrize("name", ["subscriptions", "gateway"])
def test_d_sigterm_to_one_of_two_processes_under_load_fails_no_request(fleet, rpc, name):
    load = buyers_with_subscriptions(fleet, rpc, 2, CHANGES // 2)
    [stopping, staying] = fleet.running(name)
    finished, exits = [], []

    def one(item):
        session, subscription_id = item
        client = client_of(session)
        try:
            read = client.get(f"{fleet.gateway_url}/api/v1/me/subscriptions/{subscription_id}",
                              timeout=3 * fleet.rpc_timeout)
        except requests.RequestException as error:
            read = error
        finally:
            client.close()
        outcome = change_plan(fleet, session, subscription_id, timeout=3 * fleet.rpc_timeout)
        finished.append(outcome)
        return read, outcome

    def stop_one():
        while len(finished) < STOP_AFTER:
            eventlet.sleep(0.05)
        exits.append(fleet.end(stopping, signal.SIGTERM))
        fleet.start_process(name)

    stopper = eventlet.spawn(stop_one)
    results = run_concurrently(one, load, CONCURRENCY)
    stopper.wait()
    fleet.wait_until_serving()

    failed_reads = [read for read, _ in results if isinstance(read, Exception) or read.status_code != 200]
    failed_changes = [outcome for _, outcome in results if not outcome.succeeded]
    report(f"(d) SIGTERM to a {name} process under load", requests=3 * len(results),
           failed=len(failed_reads) + len(failed_changes))

    assert not failed_reads, failed_reads[:5]
    assert not failed_changes, [outcome.failure for outcome in failed_changes][:5]
    assert exits == [0] and staying.poll() is None
    # Stopped, not killed: nameko had nothing left to kill.
    assert "killing" not in stopping.log_path.read_text()
