"""The gateway's readiness (`/readyz`) on a real broker, reached through a proxy that
counts the connections made through it and can cut them."""
from datetime import datetime, timezone

import eventlet
import pytest
import requests
from nameko.testing.utils import get_container, get_extension

from gateway.service import GatewayService
from services.common import clock
from services.common.rpc import BrokerCheck, TimedRpc
from support.waiting import wait_until

PROBES = 50


@pytest.fixture
def ready_gateway(service_config, web_config, runner_factory, broker_proxy):
    """Start a gateway whose broker link goes through the proxy; its runner and a
    function answering /readyz's status, once it first answered 200."""

    def start():
        _, uri_through_proxy = broker_proxy
        runner = runner_factory(service_config(AMQP_URI=uri_through_proxy, **web_config), GatewayService)
        runner.start()
        url = f"http://{web_config['WEB_SERVER_ADDRESS']}/readyz"

        def status():
            return requests.get(url, timeout=10).status_code

        wait_until(lambda: status() == 200, message="the gateway to be ready")
        return runner, status

    return start


def test_probes_at_once_share_the_gateways_link_and_one_broker_check(ready_gateway, broker_proxy, monkeypatch):
    proxy, _ = broker_proxy
    # A stopped clock for the kept answer: it stays fresh until the test moves time on.
    now = [0.0]
    monkeypatch.setattr(BrokerCheck, "seconds", staticmethod(lambda: now[0]))

    def move_on():
        """Time past any answer the gateway keeps."""
        now[0] += 5

    runner, status = ready_gateway()
    # The process's link, which every RPC of the gateway goes through.
    link = get_extension(get_container(runner, GatewayService), TimedRpc).link
    checks, answers = [], link.answers
    monkeypatch.setattr(link, "answers", lambda timeout: checks.append(timeout) or answers(timeout))
    connections = proxy.opened
    move_on()

    statuses = list(eventlet.GreenPool(PROBES).imap(lambda _: status(), range(PROBES)))

    assert statuses == [200] * PROBES
    assert proxy.opened == connections, "a probe opened a connection to the broker"
    assert len(checks) == 1

    proxy.cut()
    wait_until(lambda: move_on() or status() == 503, message="/readyz to see the broker gone")
    proxy.restore()
    # A no is never kept: with no time moved on, the first probe after the link is
    # back sees the broker (a gateway that serves again is ready at once).
    wait_until(lambda: status() == 200, message="/readyz to see the broker back")


def test_a_frozen_business_clock_does_not_freeze_the_answer(ready_gateway, broker_proxy, tmp_path, monkeypatch):
    """Tests and the fault suite freeze "now" for every process (`CLOCK_FILE`); the
    kept answer still ages by the machine's clock, so /readyz sees the broker go."""
    proxy, _ = broker_proxy
    clock_file = tmp_path / "clock.json"
    clock.write_clock_file(clock_file, frozen_at=datetime.now(timezone.utc))
    monkeypatch.setenv("CLOCK_FILE", str(clock_file))
    _, status = ready_gateway()

    proxy.cut()
    wait_until(lambda: status() == 503, message="/readyz to see the broker gone")
    proxy.restore()
    wait_until(lambda: status() == 200, message="/readyz to see the broker back")
