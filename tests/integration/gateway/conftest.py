"""The portal these tests talk to: the gateway with auth, subscriptions, notifications
and a stand-in billing on the broker, in the test process."""
import pytest

from gateway.service import GatewayService
from services.auth.service import AuthService
from services.common.rpc import ClusterRpcProxy
from services.notifications.service import NotificationsService
from services.subscriptions.service import SubscriptionsService
from support.mailsink import running_mailsink
from support.notifications import Receiver
from support.ports import free_port
from support.subscriptions_testkit import LEDGER, FakeBilling, Ledger


@pytest.fixture
def portal(service_config, container_factory, runner_factory, tmp_path):
    """(gateway URL, operator's RPC proxy)."""
    LEDGER["current"] = Ledger()
    with running_mailsink(tmp_path / "mail") as sink:
        config = service_config(
            "subscriptions", "auth", "notifications", SMTP_HOST="127.0.0.1", SMTP_PORT=sink.smtp_port,
            DELIVERY_POLL_INTERVAL=0.1, WEBHOOK_ALLOW_PRIVATE_ADDRESSES=True, RPC_TIMEOUT=10,
        )
        container_factory(FakeBilling, config).start()
        runner_factory(config, SubscriptionsService, AuthService, NotificationsService).start()
        address = f"127.0.0.1:{free_port()}"
        runner_factory({**config, "WEB_SERVER_ADDRESS": address}, GatewayService).start()
        with ClusterRpcProxy(config, timeout=30) as rpc:
            yield f"http://{address}", rpc


@pytest.fixture
def receiver():
    running = Receiver((200,), free_port())
    yield running
    running.close()
