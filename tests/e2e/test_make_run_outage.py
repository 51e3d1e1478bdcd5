"""`make run`'s Ctrl-C while RabbitMQ is away: every process lets go of the broker it
cannot reach and stops by itself within its stop grace; none waits for the broker,
and honcho has nothing to kill."""
from urllib.parse import urlparse

import pytest
import requests

from support.system import RunningSystem, running
from support.tcp_proxy import TcpProxy
from support.waiting import wait_until

# `make run` brings its own databases up (SQLite, or PostgreSQL where a test says so).
pytestmark = pytest.mark.fixed_database


def test_ctrl_c_while_the_broker_is_away_stops_every_process(tmp_path, rabbit_config):
    broker = urlparse(rabbit_config["AMQP_URI"])
    proxy = TcpProxy(broker.hostname, broker.port or 5672)
    system = RunningSystem(
        tmp_path, amqp_uri=f"amqp://{broker.username}:{broker.password}@127.0.0.1:{proxy.port}/{rabbit_config['vhost']}")
    try:
        system.start()
        started = system.descendants()
        proxy.cut()
        wait_until_not_ready(system)
        system.stop()  # Ctrl-C; after 30 s it would be SIGKILL
    finally:
        proxy.close()

    assert system.process.returncode == 0, system.log()[-3000:]
    assert [pid for pid in started if running(pid)] == []
    stopping = system.log().split("SIGINT received", 1)[-1]
    # Neither honcho nor a process's stop grace had to kill anything.
    for forced in ("SIGKILL", "killing what still runs", "killing active worker"):
        assert forced not in stopping, stopping[-3000:]


def wait_until_not_ready(system, timeout=30):
    """Until the gateway says it lost the broker: every process is retrying its link by then."""
    wait_until(lambda: requests.get(f"{system.gateway_url}/readyz", timeout=10).status_code == 503,
               timeout=timeout, interval=0.2, message="the gateway to notice the broker was gone")
