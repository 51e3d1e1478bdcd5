"""The fault suite's system: a private RabbitMQ node started for this run (the
machine's shared broker is never touched), and on it every service as its own
process on PostgreSQL — two processes each of the gateway, subscriptions and billing
— stopped at the end whatever happened. Each scenario's counts are printed at the
end of the run."""
import shutil
import tempfile
from pathlib import Path

import pytest
from services.common.rpc import ClusterRpcProxy

from portalctl.demo import load_demo
from support.fleet import Fleet
from support.rabbit_node import private_rabbit_node
from support.workload import COUNTS

# config.yaml's default: what a production caller waits, on a machine that may be busy.
RPC_TIMEOUT = 5
KEPT = []


@pytest.fixture(scope="session")
def fault_folder(request):
    """Every process's log and the node's data, kept (and named in the summary) when
    a scenario failed; pytest's own temporary folders are reused by later runs."""
    folder = Path(tempfile.mkdtemp(prefix="portal-faults-"))
    yield folder
    if request.session.testsfailed:
        KEPT.append(folder)
    else:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def rabbit_node(fault_folder):
    with private_rabbit_node(fault_folder / "rabbit") as node:
        yield node


@pytest.fixture(scope="session")
def fleet(rabbit_node, fault_folder):
    running = Fleet(
        fault_folder / "fleet", rabbit_node.amqp_uri,
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


@pytest.fixture(autouse=True)
def empty_mailbox(fleet):
    """Each scenario starts with an empty mail sink: the hundreds of e-mails of the
    one before would make every look for a login e-mail slow."""
    fleet.sink.clear()


@pytest.fixture
def rpc(fleet):
    with ClusterRpcProxy({"AMQP_URI": fleet.amqp_uri}, timeout=30) as proxy:
        yield proxy


def pytest_terminal_summary(terminalreporter):
    if COUNTS:
        terminalreporter.section("fault scenarios: counts")
        for line in COUNTS:
            terminalreporter.write_line(line)
    for folder in KEPT:
        terminalreporter.write_line(f"logs of the failed fault run: {folder}")
