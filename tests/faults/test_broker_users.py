"""Least privilege on the bus, on the fault suite's private RabbitMQ node (never the
machine's shared broker) loaded with the deploy's users and permissions
(deploy/rabbitmq/broker_users.py), in a vhost of its own: each process runs as its
own broker user, the broker refuses every request a user has no reason to send, and
a callee refuses a caller its entrypoint does not name."""
import json
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone

import amqp
import kombu
import pytest
from nameko.testing.services import dummy, entrypoint_hook

from services.common import migrations
from services.common.config import REPO_ROOT, load_config
from services.common.errors import Forbidden
from services.common.rpc import BrokerCheck, ClusterRpcProxy, TimedRpc
from services.notifications.service import NotificationsService
from services.subscriptions.service import SubscriptionsService
from support.broker_users import load_broker_users
from support.publishing import publish_one_as_is
from support.waiting import wait_until

VHOST = "portal_bus_users"
PORTAL = "https://portal.example.com"
PAST = (datetime.now(timezone.utc) - timedelta(minutes=1)).isoformat()


@pytest.fixture(autouse=True)
def empty_mailbox():
    """No fleet here: these tests start only what they call."""


@pytest.fixture(scope="module")
def users(rabbit_node, tmp_path_factory):
    uris = load_broker_users(rabbit_node, VHOST, tmp_path_factory.mktemp("broker-users"))
    # guest, an administrator the broker lets publish anything, stands for a caller
    # the topic permissions would let through.
    rabbit_node.ctl("set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*")
    uris["guest"] = f"amqp://guest:guest@127.0.0.1:{rabbit_node.port}/{VHOST}"
    return uris


def connect(uri, **options):
    """A plain py-amqp connection as the user of `uri`: a refusal is raised as the broker's error."""
    parts = kombu.Connection(uri)
    connection = amqp.Connection(f"{parts.hostname}:{parts.port}", userid=parts.userid, password=parts.password,
                                 virtual_host=parts.virtual_host, **options)
    connection.connect()
    return connection


@pytest.fixture
def start_as(users, migrated_db_url, container_factory):
    """Start a service class as its own broker user, on a migrated database."""

    def start(service_class, user, **overrides):
        config = load_config()
        config.update(AMQP_URI=users[user], RPC_TIMEOUT=10, PORTAL_BASE_URL=PORTAL, OUTBOX_POLL_INTERVAL=0.1,
                      **overrides)
        if service_class.name in migrations.SERVICES_WITH_DATABASE:
            config[migrations.db_url_key(service_class.name)] = migrated_db_url(service_class.name)
        container = container_factory(service_class, config)
        container.start()
        return container

    return start


class AsCaller:
    """Calls a service the way a service does (its `TimedRpc`, over the process link)."""

    name = "bus_users_caller"
    notifications = TimedRpc("notifications")
    subscriptions = TimedRpc("subscriptions")

    broker_answers = BrokerCheck()

    @dummy
    def call(self, service, method, *args, **kwargs):
        return getattr(getattr(self, service), method)(*args, **kwargs)

    @dummy
    def ready(self):
        return self.broker_answers()


def call_as(start_as, user, service, method, *args, **kwargs):
    container = start_as(AsCaller, user)
    with entrypoint_hook(container, "call") as call:
        return call(service, method, *args, **kwargs)


def test_an_events_reader_reads_its_own_queues_and_may_publish_nothing(users):
    reader = users["events-reader"]
    for exchange, routing_key in [
        ("nameko-rpc", "auth.create_api_key"),  # an operator's RPC
        ("nameko-rpc", "subscriptions.get_subscription"),  # a service's RPC
        ("billing.events", "order_paid"),  # an event
        ("", "rpc-auth"),  # straight into a queue
    ]:
        with pytest.raises(amqp.exceptions.AccessRefused):
            publish_one_as_is(reader, exchange, routing_key)

    connection = connect(reader)  # what it may do: its own queue, bound to an event exchange
    try:
        channel = connection.channel()
        channel.queue_declare("events-reader.audit", durable=True, auto_delete=False)
        channel.queue_bind("events-reader.audit", "billing.events", "#")
        channel.basic_get("events-reader.audit")
        with pytest.raises(amqp.exceptions.AccessRefused):
            connection.channel().queue_declare("rpc-auth", durable=True, auto_delete=False)
    finally:
        connection.collect()


def test_the_example_consumer_follows_events_as_the_events_reader(users):
    """examples/consume_events.py as the README says to run it in a deployment: the
    events reader's credentials and a queue named for it; it may not declare the event
    exchanges, so it finds them."""
    reader, queue = users["events-reader"], "events-reader.crm"
    consumer = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "examples" / "consume_events.py"), "--amqp-uri", reader,
         "--queue", queue, "--bind", "subscriptions:subscription_*", "--count", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        def consuming():
            assert consumer.poll() is None, consumer.communicate()[1]
            connection = connect(reader)
            try:
                return connection.channel().queue_declare(queue, passive=True).consumer_count
            except amqp.exceptions.NotFound:
                return 0
            finally:
                connection.collect()

        wait_until(consuming, message="the example to consume its queue")
        event = {"event_id": str(uuid.uuid4()), "type": "subscription_canceled", "data": {}}
        publish_one_as_is(users["subscriptions"], "subscriptions.events", "subscription_canceled",
                          json.dumps(event).encode(), user_id="subscriptions")
        output, errors = consumer.communicate(timeout=30)
    finally:
        consumer.kill()
    assert consumer.returncode == 0, errors
    assert [json.loads(line)["event_id"] for line in output.splitlines()] == [event["event_id"]]


@pytest.mark.parametrize("user", ["gateway", "auth", "subscriptions", "billing", "notifications"])
def test_no_service_may_send_an_operator_rpc(users, user):
    for routing_key in ("auth.create_api_key", "notifications.replay_webhook", "notifications.retry"):
        with pytest.raises(amqp.exceptions.AccessRefused):
            publish_one_as_is(users[user], "nameko-rpc", routing_key, user_id=user)


def test_a_service_may_not_send_what_it_has_no_reason_to(users):
    with pytest.raises(amqp.exceptions.AccessRefused):  # only auth asks for login e-mails
        publish_one_as_is(users["gateway"], "nameko-rpc", "notifications.send_login_email", user_id="gateway")
    with pytest.raises(amqp.exceptions.AccessRefused):  # only billing publishes billing's events
        publish_one_as_is(users["subscriptions"], "billing.events", "order_paid")


def test_a_forged_user_id_is_refused_by_the_broker(users):
    with pytest.raises(amqp.exceptions.PreconditionFailed):
        publish_one_as_is(users["gateway"], "nameko-rpc", "subscriptions.get_merchant", user_id="auth")


def test_each_service_makes_its_calls_as_its_own_user(start_as):
    start_as(NotificationsService, "notifications")
    start_as(SubscriptionsService, "subscriptions")

    # auth asks notifications for a login e-mail (expired already: dropped, not sent).
    answer = call_as(start_as, "auth", "notifications", "send_login_email", email="ana@example.com",
                     link=f"{PORTAL}/entrar?token=abc", code="042917", expires_at=PAST)
    assert answer["status"] == "dropped"
    # The gateway asks subscriptions, a service answers through the default exchange.
    assert call_as(start_as, "gateway", "subscriptions", "ping")["service"] == "subscriptions"


def test_the_gateways_readiness_probe_needs_no_more_than_its_calls(start_as):
    container = start_as(AsCaller, "gateway")
    with entrypoint_hook(container, "ready") as ready:
        assert ready() is True


def test_the_operator_calls_operator_rpcs_as_portalctl_does(start_as, users):
    start_as(NotificationsService, "notifications")

    with ClusterRpcProxy({"AMQP_URI": users["operator"]}, timeout=10) as operator:
        assert operator.notifications.list_outbox() == []


def test_a_callee_refuses_a_caller_its_entrypoint_does_not_name(start_as, users):
    start_as(NotificationsService, "notifications")

    # The broker lets guest publish anything; notifications answers send_login_email
    # to auth only, and the operator RPCs to the operator only.
    with ClusterRpcProxy({"AMQP_URI": users["guest"]}, timeout=10) as stranger:
        with pytest.raises(Forbidden):
            stranger.notifications.send_login_email(
                email="ana@example.com", link=f"{PORTAL}/entrar?token=abc", code="042917", expires_at=PAST)
        with pytest.raises(Forbidden):
            stranger.notifications.list_outbox()


def test_an_event_put_straight_into_a_handlers_queue_is_dropped(start_as, users, rabbit_node, caplog):
    start_as(NotificationsService, "notifications")
    queue = "evt-billing-order_paid--notifications.on_order_paid"

    # subscriptions may write to the default exchange (it answers RPCs through it),
    # so it can reach any queue by name: a forged "order paid" for notifications.
    publish_one_as_is(users["subscriptions"], "", queue, user_id="subscriptions", content_type="application/json")

    wait_until(lambda: f"dropped a message in {queue}" in caplog.text, timeout=20)
    ready_and_unacknowledged = rabbit_node.ctl(
        "list_queues", "-p", VHOST, "name", "messages", "--no-table-headers", "--quiet").split()
    assert ready_and_unacknowledged[ready_and_unacknowledged.index(queue) + 1] == "0"
