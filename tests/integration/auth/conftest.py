"""auth under test: a real database, the real bus, the fakes of `support.auth_testing`
on the same vhost, and a clock the test moves."""
import time

import eventlet
import pytest
from services.common.rpc import ClusterRpcProxy

from services.auth.service import AuthService
from services.common.clock import write_clock_file
from support.auth_testing import SETTINGS, T0, FakeSubscriptions, fake_notifications
from support.bus_tap import BusTap


@pytest.fixture
def clock(tmp_path, monkeypatch):
    """Moves the time every service of this process (and its children) sees."""
    path = tmp_path / "clock.json"
    monkeypatch.setenv("CLOCK_FILE", str(path))

    def set_time(moment):
        write_clock_file(path, frozen_at=moment)

    set_time(T0)
    return set_time


@pytest.fixture
def config(service_config, clock):
    return service_config("auth", **SETTINGS)


@pytest.fixture
def login_emails():
    """What the fake notifications service was asked to send, in order."""
    return []


@pytest.fixture
def start_subscriptions(container_factory, config):
    return lambda: container_factory(FakeSubscriptions, config).start()


@pytest.fixture
def start_notifications(container_factory, config, login_emails):
    def start(gate=None):
        container_factory(fake_notifications(login_emails, gate), config).start()

    return start


@pytest.fixture
def start_auth(container_factory, config):
    def start():
        container = container_factory(AuthService, config)
        container.start()
        return container

    return start


@pytest.fixture
def system(start_subscriptions, start_notifications, start_auth):
    start_subscriptions()
    start_notifications()
    return start_auth()


@pytest.fixture
def cluster(config):
    with ClusterRpcProxy(config, timeout=10) as proxy:
        yield proxy


@pytest.fixture
def wait_for_emails(login_emails):
    """`wait_for_emails(n)`: the e-mails once there are n of them (sent in the background)."""

    def wait(count, timeout=5):
        deadline = time.monotonic() + timeout
        while len(login_emails) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(login_emails)} login e-mails sent, expected {count}")
            eventlet.sleep(0.02)
        return login_emails

    return wait


@pytest.fixture
def bus_copies(config):
    """`bus_copies()`: every RPC message (requests and replies) and every event
    published since the fixture started, as kombu messages."""
    with BusTap(config["AMQP_URI"]) as tap:
        yield tap.messages
