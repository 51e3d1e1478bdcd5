"""`TimedRpc` and the project's `rpc` on a real broker: answers and errors, deadlines,
a service that does not exist, a lost link, many calls at once, late replies dropped,
and nameko's own callers still answered."""
import time

import eventlet
import pytest
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing.services import entrypoint_hook
from nameko.testing.utils import get_extension

from services.common.errors import NotFound, ServiceUnavailable
from services.common.observability import current_correlation_id
from services.common.rpc import RpcLink, TimedRpc, rpc

CONTAINER = "services.common.observability.ObservedContainer"
TIMEOUT = 1.0


class Echo:
    name = "echo"
    slow_calls = []

    @rpc
    def echo(self, value, suffix=""):
        return f"{value}{suffix}"

    @rpc(expected_exceptions=NotFound)
    def missing(self):
        raise NotFound("nothing here", fields={"id": "x"})

    @rpc
    def slow(self, seconds):
        Echo.slow_calls.append(seconds)
        eventlet.sleep(seconds)
        return seconds

    @rpc
    def whoami(self):
        return current_correlation_id.get()


class Caller:
    name = "caller"
    echo = TimedRpc("echo")
    absent = TimedRpc("absent")


@pytest.fixture
def start(container_factory, rabbit_config):
    def start(service, **overrides):
        config = {**rabbit_config, "SERVICE_CONTAINER_CLS": CONTAINER, "RPC_TIMEOUT": TIMEOUT, **overrides}
        container = container_factory(service, config)
        container.start()
        return container

    return start


def proxy_of(container, name="echo"):
    """The proxy a worker of `container` gets for `name`."""
    provider = get_extension(container, TimedRpc, attr_name=name)
    return provider.get_dependency(FakeWorker())


class FakeWorker:
    context_data = {"correlation_id": "test-correlation-1"}


def test_a_call_answers_and_carries_the_callers_context(start):
    start(Echo)
    echo = proxy_of(start(Caller))
    assert echo.echo("a", suffix="b") == "ab"
    assert echo.echo.call_async(1).result() == "1"
    assert echo.whoami() == "test-correlation-1"


def test_a_refusal_comes_back_as_its_own_class(start):
    start(Echo)
    echo = proxy_of(start(Caller))
    with pytest.raises(NotFound) as refused:
        echo.missing()
    assert refused.value.fields == {"id": "x"}


def test_a_call_past_its_deadline_is_unavailable_and_its_late_reply_dropped(start):
    start(Echo)
    caller = start(Caller)
    echo = proxy_of(caller)
    with pytest.raises(ServiceUnavailable, match="did not answer in time"):
        echo.with_timeout(0.3).slow(0.8)
    link = get_extension(caller, TimedRpc, attr_name="echo").link
    eventlet.sleep(0.8)  # the late reply arrives meanwhile
    assert link._calls == {}
    # The link is fine, and the next call gets its own answer, not the late one.
    assert echo.echo("next") == "next"


def test_a_service_with_no_queue_is_unavailable_at_once(start):
    absent = proxy_of(start(Caller), "absent")
    # "is not running" comes only from the broker's return, never from the deadline.
    with pytest.raises(ServiceUnavailable, match="is not running"):
        absent.anything()


def test_a_service_whose_queue_has_no_consumer_is_unavailable_at_the_deadline(start):
    echo_container = start(Echo)
    echo_container.stop()  # its queue stays, durable, with nobody consuming it
    echo = proxy_of(start(Caller))
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable, match="did not answer in time"):
        echo.echo("anyone?")
    assert time.monotonic() - started >= TIMEOUT


def test_many_green_threads_calling_at_once_each_get_their_own_answer(start):
    start(Echo)
    # A deadline the shared machine cannot miss: this is about answers, not time.
    echo = proxy_of(start(Caller)).with_timeout(30)
    pool = eventlet.GreenPool(50)
    answers = list(pool.imap(lambda n: echo.echo(n, suffix="!"), range(300)))
    assert answers == [f"{n}!" for n in range(300)]


def test_a_lost_link_fails_the_calls_under_way_and_later_calls_work(start, broker_proxy):
    proxy, uri_through_proxy = broker_proxy
    start(Echo)
    caller = start(Caller, AMQP_URI=uri_through_proxy)
    echo = proxy_of(caller)
    assert echo.echo("before") == "before"

    Echo.slow_calls.clear()
    under_way = echo.with_timeout(5).slow.call_async(1.0)
    while not Echo.slow_calls:  # the request has reached the service
        eventlet.sleep(0.01)
    proxy.cut()
    # "cannot be reached" is the lost link failing the call, not its deadline passing.
    with pytest.raises(ServiceUnavailable, match="cannot be reached"):
        under_way.result()
    with pytest.raises(ServiceUnavailable, match="cannot be reached"):
        echo.with_timeout(0.3).echo("while cut off")

    proxy.restore()
    deadline = time.monotonic() + 15
    while True:
        try:
            assert echo.echo("after") == "after"
            break
        except ServiceUnavailable:
            assert time.monotonic() < deadline, "the link did not come back"
            eventlet.sleep(0.2)


def test_the_link_is_one_per_process_and_closes_with_its_last_user(start, rabbit_config):
    server, first, second = start(Echo), start(Caller), start(Caller)
    link = get_extension(first, TimedRpc, attr_name="echo").link
    assert get_extension(second, TimedRpc, attr_name="echo").link is link
    first.stop()
    assert proxy_of(second).echo("still") == "still"
    second.stop()
    server.stop()  # its replies went through the same link
    assert rabbit_config["AMQP_URI"] not in RpcLink._shared
    assert link._drainer.dead and link._connection is None


def test_nameko_standalone_callers_are_still_answered(start, rabbit_config):
    start(Echo)
    with ClusterRpcProxy({"AMQP_URI": rabbit_config["AMQP_URI"]}, timeout=10) as cluster:
        assert cluster.echo.echo("classic") == "classic"
        with pytest.raises(NotFound):
            cluster.echo.missing()


def test_a_worker_calls_through_its_dependency(start):
    class Relay:
        name = "relay"
        echo = TimedRpc("echo")

        @rpc
        def relay(self, value):
            return self.echo.echo(value, suffix="?")

    start(Echo)
    relay = start(Relay)
    with entrypoint_hook(relay, "relay") as call:
        assert call("x") == "x?"


def test_a_server_stopping_answers_the_calls_it_took_and_takes_no_more(start):
    server = start(Echo)
    echo = proxy_of(start(Caller)).with_timeout(5)
    Echo.slow_calls.clear()
    under_way = echo.slow.call_async(0.5)
    while not Echo.slow_calls:
        eventlet.sleep(0.01)
    stopping = eventlet.spawn(server.stop)
    assert under_way.result() == 0.5
    stopping.wait()
    with pytest.raises(ServiceUnavailable, match="did not answer in time"):
        echo.with_timeout(0.5).echo("anyone?")
