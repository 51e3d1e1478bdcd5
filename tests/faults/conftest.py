"""The fault suite's system: a private RabbitMQ node started for this run (the
machine's shared broker is never touched), and on it every service as its own
process on PostgreSQL — two processes each of the gateway, subscriptions and billing
— stopped at the end whatever happened. Each scenario's counts are printed at the
end of the run."""
import pytest
from nameko.standalone.rpc import ClusterRpcProxy

from portalctl.demo import load_demo
from support.fleet import Fleet
from support.rabbit_node import private_rabbit_node
from support.workload import COUNTS

# config.yaml's default: what a production caller waits, on a machine that may be busy.
RPC_TIMEOUT = 5


@pytest.fixture(scope="session")
def rabbit_node(tmp_path_factory):
    with private_rabbit_node(tmp_path_factory.mktemp("rabbit")) as node:
        yield node


@pytest.fixture(scope="session")
def fleet(rabbit_node, tmp_path_factory):
    running = Fleet(
        tmp_path_factory.mktemp("fleet"), rabbit_node.amqp_uri,
        replicas={"gateway": 2, "subscriptions": 2, "billing": 2}, rpc_timeout=RPC_TIMEOUT,
        # The reconciler settles at once what a killed process left unknown.
        extra_env={"RECONCILE_INTERVAL": "1", "DELIVERY_POLL_INTERVAL": "0.2"},
    )
    try:
        running.start()
        with ClusterRpcProxy({"AMQP_URI": running.amqp_uri}, timeout=30) as rpc:
            load_demo(rpc, running.gateway_url)
        yield running
    finally:
        running.stop()


@pytest.fixture
def rpc(fleet):
    with ClusterRpcProxy({"AMQP_URI": fleet.amqp_uri}, timeout=30) as proxy:
        yield proxy


def pytest_terminal_summary(terminalreporter):
    if COUNTS:
        terminalreporter.section("fault scenarios: counts")
        for line in COUNTS:
            terminalreporter.write_line(line)
