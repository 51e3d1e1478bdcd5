"""Fixtures of the notifications integration tests: a real SMTP sink, the stand-ins
for subscriptions and billing, notifications itself and a merchant's receiver."""
import pytest

from services.notifications.service import NotificationsService
from support.mailsink import running_mailsink
from support.notifications import PORTAL, SENDER, FakeBilling, FakeSubscriptions, Receiver, identities_seen, merchants_asked


@pytest.fixture
def sink(tmp_path):
    with running_mailsink(tmp_path / "mail") as running:
        yield running


@pytest.fixture
def owning_services(rabbit_config, container_factory):
    """subscriptions and billing as notifications sees them: RPC answers."""
    identities_seen.clear()
    merchants_asked.clear()
    for service in (FakeSubscriptions, FakeBilling):
        container_factory(service, {"AMQP_URI": rabbit_config["AMQP_URI"]}).start()


@pytest.fixture
def notifications_config(service_config):
    """Config for a notifications under test that sends to `smtp_port`, polling fast."""

    def make(smtp_port, **overrides):
        return service_config(
            "notifications", SMTP_HOST="127.0.0.1", SMTP_PORT=smtp_port, SMTP_TIMEOUT=5, MAIL_FROM=SENDER,
            PORTAL_BASE_URL=PORTAL, DELIVERY_POLL_INTERVAL=0.1, **overrides,
        )

    return make


@pytest.fixture
def start_notifications(notifications_config, container_factory):
    def start(smtp_port, **overrides):
        config = notifications_config(smtp_port, **overrides)
        container = container_factory(NotificationsService, config)
        container.start()
        return config, container

    return start


@pytest.fixture
def receiver():
    """`receiver(500, 500, 500, 200)`: answers those statuses in turn, then the last for
    ever (on `port=` if given; `headers=` and `tls=` as `Receiver` takes them)."""
    started = []

    def start(*statuses, port=0, **options):
        started.append(Receiver(statuses or (200,), port, **options))
        return started[-1]

    yield start
    for running in started:
        running.close()
