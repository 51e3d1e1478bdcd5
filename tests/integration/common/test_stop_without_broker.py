"""A container told to stop while its broker is away stops: it lets running workers
finish (their answers, which cannot be sent, are dropped), waits for nothing on the
missing broker, and past STOP_GRACE_SECONDS kills what still runs."""
import logging

import eventlet
import pytest
from eventlet.event import Event
from nameko.events import event_handler
from services.common.rpc import ClusterRpcProxy

from services.common.rpc import TimedRpc, rpc

CONTAINER = "services.common.observability.ObservedContainer"
# Not a speed limit: a stop that waits for the broker would wait until this ends.
HANG_GUARD_SECONDS = 60


class Slow:
    name = "slow_service"
    # A caller as well: callers and the server share the process's RPC link.
    other = TimedRpc("nobody")

    @event_handler("nobody", "nothing_happened")
    def on_nothing(self, payload):
        """An event handler: nameko's queue consumer, reconnecting without end, is in
        the container too."""
    release = None
    outcomes = []

    @rpc
    def wait_for_release(self):
        try:
            Slow.release.wait()
        except BaseException as interrupted:
            Slow.outcomes.append(type(interrupted).__name__)
            raise
        Slow.outcomes.append("finished")
        return "done"


@pytest.fixture
def slow_service(container_factory, rabbit_config, broker_proxy, caplog):
    """A started Slow on the broker through the proxy, and a way to call it directly."""
    proxy, proxied_uri = broker_proxy
    Slow.release, Slow.outcomes = Event(), []
    caplog.set_level(logging.INFO)

    def start(**settings):
        config = {**rabbit_config, "AMQP_URI": proxied_uri, "SERVICE_CONTAINER_CLS": CONTAINER, **settings}
        container = container_factory(Slow, config)
        container.start()
        return container

    return start, proxy


def cut_off(proxy, caplog):
    """The broker gone for the container, which is retrying its connection by now."""
    proxy.cut()
    with eventlet.Timeout(HANG_GUARD_SECONDS):
        while not all(sign in caplog.text for sign in ("RPC link to the broker down", "Error connecting to broker")):
            eventlet.sleep(0.05)


def start_a_slow_worker(container, rabbit_config):
    """A call that keeps its worker running until `Slow.release` is sent."""
    with ClusterRpcProxy(rabbit_config) as caller:
        caller.slow_service.wait_for_release.call_async()
        with eventlet.Timeout(HANG_GUARD_SECONDS):
            while not container._worker_threads:
                eventlet.sleep(0.05)


def test_an_idle_container_stops_without_waiting_for_the_broker(slow_service, caplog):
    start, proxy = slow_service
    container = start(STOP_GRACE_SECONDS=HANG_GUARD_SECONDS * 10)
    cut_off(proxy, caplog)

    with eventlet.Timeout(HANG_GUARD_SECONDS):
        container.stop()

    assert container._died.ready()
    assert "killing" not in caplog.text  # a graceful stop, not the grace window's kill


def test_a_running_worker_finishes_then_the_container_stops(slow_service, rabbit_config, caplog):
    start, proxy = slow_service
    container = start(STOP_GRACE_SECONDS=HANG_GUARD_SECONDS * 10)
    start_a_slow_worker(container, rabbit_config)
    cut_off(proxy, caplog)

    stopping = eventlet.spawn(container.stop)
    eventlet.sleep(0.5)
    assert not stopping.dead  # it waits for the worker...
    Slow.release.send()
    with eventlet.Timeout(HANG_GUARD_SECONDS):
        stopping.wait()

    assert Slow.outcomes == ["finished"]  # ...which ran to its end
    assert "killing" not in caplog.text


def test_past_the_grace_window_what_still_runs_is_killed(slow_service, rabbit_config, caplog):
    start, proxy = slow_service
    container = start(STOP_GRACE_SECONDS=1)
    start_a_slow_worker(container, rabbit_config)
    cut_off(proxy, caplog)

    with eventlet.Timeout(HANG_GUARD_SECONDS):
        container.stop()

    assert container._died.ready()
    assert Slow.outcomes == ["GreenletExit"]
    assert "did not stop within 1 s; killing what still runs" in caplog.text
