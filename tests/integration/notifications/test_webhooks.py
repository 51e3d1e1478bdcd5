"""Merchant webhooks against a local HTTP receiver: every event about the merchant's
buyers POSTed once as its envelope, signed with the merchant's secret, retried with
backoff, logged, given up on (`webhook_failed`) when the window ends, and replayable;
never to the portal's own network, whether saved, delivered, rebound or replayed."""
import json
from dataclasses import replace

import eventlet
import pytest
from services.common.rpc import ClusterRpcProxy
from nameko.testing.services import entrypoint_waiter
from nameko.testing.utils import get_extension

from portalctl import cli
from services.common.errors import NotFound, RuleRefused, ValidationFailed
from services.notifications import delivery
from support.ports import free_ports
from support.notifications import (
    ANA, MERCHANT_ID, Dns, envelope, merchant_verifies, publish, save_endpoints_unchecked,
)
from support.waiting import wait_until

FAST_RETRIES = {"WEBHOOK_RETRY_BASE_SECONDS": 0.1, "WEBHOOK_RETRY_MAX_DELAY_SECONDS": 0.2}
# The receivers listen on this machine, as a developer's do under `make run`.
LOCAL_RECEIVERS = {"WEBHOOK_ALLOW_PRIVATE_ADDRESSES": True}
PRODUCTION = {"WEBHOOK_ALLOW_PRIVATE_ADDRESSES": False}


def canceled(merchant_id=MERCHANT_ID):
    return envelope(
        "subscription_canceled", merchant_id, subscription_id="sub-ana", email=ANA, actor="buyer",
        reason="buyer", feedback=None, comment=None, canceled_at="2026-06-04T15:00:00+00:00",
    )


def order_paid():
    return envelope(
        "order_paid", order_id="o-1", code="PED-AAAAPAGO", subscription_id=None, cycle_number=None, kind=None,
        idempotency_key=None, amount_cents=123456, status="paid", method="credit_card", email=ANA,
    )


def put_settings(cluster, *endpoints, **options):
    return cluster.notifications.put_webhook_settings(MERCHANT_ID, {"endpoints": list(endpoints), **options})


def deliveries(cluster, merchant_id=MERCHANT_ID):
    return cluster.notifications.list_webhook_deliveries(merchant_id=merchant_id)


def resolve_with(container, dns):
    """From now on `container` resolves webhook hosts with `dns` (a `Dns`)."""
    provider = get_extension(container, delivery.Settings)
    settings = provider.settings
    provider.settings = replace(settings, webhook_destinations=replace(settings.webhook_destinations, resolver=dns))


def refusal(cluster, url):
    """The field errors of saving `url` after an acceptable endpoint."""
    with pytest.raises(ValidationFailed) as refused:
        put_settings(cluster, {"url": "https://hooks.acme.example/portal"}, {"url": url})
    return refused.value.fields


@pytest.fixture
def notifications(sink, owning_services, start_notifications):
    """Starts notifications (fast webhook retries, receivers on this machine allowed);
    yields (config, container, rpc)."""
    clusters = []

    def start(**overrides):
        config, container = start_notifications(sink.smtp_port, **{**FAST_RETRIES, **LOCAL_RECEIVERS, **overrides})
        clusters.append(ClusterRpcProxy(config, timeout=15))
        return config, container, clusters[-1].start()

    yield start
    for cluster in clusters:
        cluster.stop()


@pytest.fixture
def portalctl(monkeypatch, capsys):
    """`portalctl(config, "webhooks", "deliveries")`: its output, run against `config`'s broker."""

    def run(config, *args):
        monkeypatch.setenv("AMQP_URI", config["AMQP_URI"])
        capsys.readouterr()
        assert cli.main(list(args)) == 0
        return capsys.readouterr().out

    return run


def test_the_secret_is_made_on_the_first_put_kept_after_and_replaced_on_request(notifications):
    _, _, cluster = notifications()

    before = cluster.notifications.get_webhook_settings(MERCHANT_ID)
    first = put_settings(cluster, {"url": "https://hooks.acme.example/portal"})
    second = put_settings(cluster, {"url": "https://hooks.acme.example/portal", "event_types": ["order_paid"]},
                          {"url": "http://10.0.0.5:8080/billing"})
    shown = cluster.notifications.get_webhook_settings(MERCHANT_ID)
    rotated = put_settings(cluster, {"url": "https://hooks.acme.example/portal"}, rotate_secret=True)
    other_merchant = cluster.notifications.get_webhook_settings("outra-loja")
    with pytest.raises(ValidationFailed) as refused:
        put_settings(cluster, {"url": "ftp://hooks.acme.example", "event_types": ["login_link_requested"]})

    assert before["secret"] is None and before["endpoints"] == []
    assert first["secret"].startswith("whsec_") and len(first["secret"]) > 40
    assert second["secret"] == shown["secret"] == first["secret"]
    assert [(endpoint["url"], endpoint["event_types"]) for endpoint in shown["endpoints"]] == [
        ("https://hooks.acme.example/portal", ["order_paid"]), ("http://10.0.0.5:8080/billing", []),
    ]
    assert "subscription_canceled" in shown["event_types"] and "order_paid" in shown["event_types"]
    assert rotated["secret"] not in (None, first["secret"])
    assert [endpoint["url"] for endpoint in rotated["endpoints"]] == ["https://hooks.acme.example/portal"]
    assert other_merchant["secret"] is None
    assert set(refused.value.fields["endpoints"]["0"]) == {"url", "event_types"}


def test_each_event_is_posted_as_its_envelope_signed_with_the_merchants_secret(notifications, receiver):
    config, _, cluster = notifications()
    everything, only_orders = receiver(200), receiver(200)
    settings = put_settings(cluster, {"url": everything.url}, {"url": only_orders.url, "event_types": ["order_paid"]})
    event, payment, elsewhere = canceled(), order_paid(), canceled(merchant_id="outra-loja")

    publish(config["AMQP_URI"], "subscriptions", event, elsewhere)
    publish(config["AMQP_URI"], "billing", payment)

    wait_until(lambda: len(everything.requests) == 2 and len(only_orders.requests) == 1, message="3 webhooks")
    by_event = {json.loads(request["body"])["event_id"]: request for request in everything.requests}
    request = by_event[event["event_id"]]
    assert json.loads(request["body"]) == event
    assert request["path"] == "/hooks/portal"
    assert request["headers"]["Content-Type"] == "application/json"
    assert request["headers"]["X-Portal-Event-Id"] == event["event_id"]
    assert request["headers"]["X-Portal-Event-Type"] == "subscription_canceled"
    signature = request["headers"]["X-Portal-Signature"]
    assert merchant_verifies(settings["secret"], signature, request["body"])
    assert not merchant_verifies("whsec_someone-elses-secret", signature, request["body"])
    assert not merchant_verifies(settings["secret"], signature, request["body"].replace(b"buyer", b"staff"))
    assert json.loads(only_orders.requests[0]["body"]) == payment
    assert merchant_verifies(settings["secret"], only_orders.requests[0]["headers"]["X-Portal-Signature"],
                             only_orders.requests[0]["body"])

    logged = wait_until(lambda: [d for d in deliveries(cluster) if d["status"] == "delivered"][2:] and deliveries(cluster),
                        message="3 deliveries logged")
    assert len(logged) == 3
    assert all(len(delivery["log"]) == 1 and delivery["log"][0]["status_code"] == 200 for delivery in logged)
    assert deliveries(cluster, merchant_id="outra-loja") == []


def test_a_merchant_may_follow_its_refunds_by_webhook(notifications, receiver):
    config, _, cluster = notifications()
    refunds = receiver(200)
    put_settings(cluster, {"url": refunds.url, "event_types": ["order_refunded", "refund_failed"]})
    data = {"refund_id": "r-1", "order_id": "o-1", "code": "PED-AAAAPAGO", "email": ANA, "subscription_id": None,
            "method": "credit_card", "amount_cents": 1000, "order_amount_cents": 123456, "reason": None,
            "actor": "merchant"}
    done = envelope("order_refunded", **data, refunded_cents=1000, order_status="partially_refunded", status="done",
                    failure_reason=None)
    failed = envelope("refund_failed", **data, refunded_cents=0, order_status="paid", status="failed",
                      failure_reason="refund_declined")

    publish(config["AMQP_URI"], "billing", done, failed, order_paid())

    wait_until(lambda: len(refunds.requests) == 2, message="2 webhooks")
    assert sorted(request["headers"]["X-Portal-Event-Type"] for request in refunds.requests) == [
        "order_refunded", "refund_failed"]


def test_the_same_event_delivered_twice_sends_one_e_mail_and_one_webhook(notifications, receiver, sink):
    config, container, cluster = notifications()
    endpoint = receiver(200)
    put_settings(cluster, {"url": endpoint.url})
    event = canceled()

    for _ in range(2):
        with entrypoint_waiter(container, "on_subscription_canceled", timeout=15):
            publish(config["AMQP_URI"], "subscriptions", event)

    [message] = sink.wait_for_messages(1)
    wait_until(lambda: endpoint.requests, message="the webhook")
    eventlet.sleep(1)  # ten rounds of each sender: nothing more is due
    assert len(sink.messages()) == 1 and len(sink.message_ids()) == 1
    assert len(endpoint.requests) == 1
    [row] = cluster.notifications.list_outbox()
    assert row["event_id"] == event["event_id"] and row["status"] == "sent"
    assert message["subject"] == "Assinatura cancelada: Curso de Python"
    [delivery] = deliveries(cluster)
    assert delivery["event_id"] == event["event_id"] and delivery["status"] == "delivered"


def test_a_receiver_failing_three_times_gets_it_the_fourth_and_then_no_more(notifications, receiver):
    config, _, cluster = notifications()
    flaky = receiver(500, 500, 500, 200)
    put_settings(cluster, {"url": flaky.url})

    publish(config["AMQP_URI"], "subscriptions", canceled())

    [delivery] = wait_until(lambda: [d for d in deliveries(cluster) if d["status"] == "delivered"],
                            message="delivered after three failures")
    eventlet.sleep(1)  # time for a (wrong) fifth attempt
    assert len(flaky.requests) == 4
    assert len({request["headers"]["X-Portal-Event-Id"] for request in flaky.requests}) == 1
    assert [attempt["status_code"] for attempt in delivery["log"]] == [500, 500, 500, 200]
    assert [attempt["error"] for attempt in delivery["log"]] == ["HTTP 500"] * 3 + [None]
    assert delivery["attempts"] == 4
    [delivery] = deliveries(cluster)
    assert len(delivery["log"]) == 4


def test_a_receiver_down_for_the_whole_window_ends_in_webhook_failed_and_can_be_replayed(
        notifications, receiver, event_queue, portalctl):
    [closed_port] = free_ports(1)
    failed = event_queue("notifications", "webhook_failed")
    config, _, cluster = notifications(WEBHOOK_RETRY_WINDOW_SECONDS=1.5)
    url = f"http://127.0.0.1:{closed_port}/hooks/portal"
    put_settings(cluster, {"url": url})
    event = canceled()

    publish(config["AMQP_URI"], "subscriptions", event)

    gave_up = failed.get(timeout=20).payload
    [delivery] = deliveries(cluster)
    assert delivery["status"] == "failed"
    assert gave_up["type"] == "webhook_failed" and gave_up["merchant_id"] == MERCHANT_ID
    assert gave_up["data"]["delivery_id"] == delivery["id"]
    assert gave_up["data"]["event_id"] == event["event_id"]
    assert gave_up["data"]["url"] == url
    assert gave_up["data"]["attempts"] == delivery["attempts"] >= 3
    assert all(attempt["status_code"] is None and attempt["error"] for attempt in delivery["log"])

    listed = portalctl(config, "webhooks", "deliveries", "--merchant", MERCHANT_ID)
    assert delivery["id"] in listed and "failed" in listed
    back_up = receiver(200, port=closed_port)
    replayed = portalctl(config, "webhooks", "replay", delivery["id"])
    assert delivery["id"] in replayed
    wait_until(lambda: back_up.requests, message="the replayed webhook")
    assert json.loads(back_up.requests[0]["body"]) == event
    [delivery] = wait_until(lambda: [d for d in deliveries(cluster) if d["status"] == "delivered"],
                            message="marked delivered")
    assert delivery["log"][-1]["status_code"] == 200


REFUSED = {
    "http://127.0.0.1:8001/sandbox/orders/PED-AAAABBBB/pay": "address not allowed: 127.0.0.1",
    "http://169.254.169.254/latest/meta-data/": "address not allowed: 169.254.169.254",
    "http://10.0.0.5:8080/billing": "address not allowed: 10.0.0.5",
    "http://0.0.0.0:8001/": "address not allowed: 0.0.0.0",
    "http://[::1]:8001/": "address not allowed: ::1",
    "http://[fd00::1]/": "address not allowed: fd00::1",
    "http://[fe80::1]/": "address not allowed: fe80::1",
    "http://2130706433:8001/": "address not allowed: 127.0.0.1",
    "http://localhost:8001/": "address not allowed: localhost",
    "https://internal.acme.example/hooks": "address not allowed: internal.acme.example resolves to 10.0.0.7",
    "https://merchant:s3cret@hooks.acme.example/portal": "credentials in the URL are not allowed",
}


def test_a_url_that_could_reach_the_portals_network_is_refused_naming_its_field(notifications):
    _, container, cluster = notifications(**PRODUCTION)
    # Nothing connects to the global address: it is only the name's answer.
    resolve_with(container, Dns({"hooks.acme.example": ["93.184.215.14"], "internal.acme.example": ["10.0.0.7"]}))

    fields = {url: refusal(cluster, url) for url in REFUSED}

    assert fields == {url: {"endpoints": {"1": {"url": [error]}}} for url, error in REFUSED.items()}
    assert cluster.notifications.get_webhook_settings(MERCHANT_ID)["endpoints"] == []


def test_a_name_rebound_to_this_machine_after_it_was_saved_gets_nothing(notifications, receiver, event_queue):
    failed = event_queue("notifications", "webhook_failed")
    config, container, cluster = notifications(**PRODUCTION)
    endpoint = receiver(200)
    dns = Dns({"hooks.acme.example": ["93.184.215.14"]})
    resolve_with(container, dns)
    put_settings(cluster, {"url": f"http://hooks.acme.example:{endpoint.port}/hooks/portal"})

    dns.names["hooks.acme.example"] = ["127.0.0.1"]
    publish(config["AMQP_URI"], "subscriptions", canceled())

    gave_up = failed.get(timeout=20).payload["data"]
    [refused] = deliveries(cluster)
    # Refused for good at the first attempt: no retries for 24 h.
    assert (refused["status"], refused["attempts"]) == ("failed", 1)
    assert refused["last_error"] == gave_up["last_error"] == "address not allowed: hooks.acme.example resolves to 127.0.0.1"
    assert endpoint.requests == []


def test_with_the_development_setting_the_portals_own_ports_stay_refused(notifications, receiver, event_queue):
    failed = event_queue("notifications", "webhook_failed")
    billing, developers = receiver(200), receiver(200)
    config, container, cluster = notifications(BILLING_PORT=billing.port)
    dns = Dns({"hooks.acme.example": ["93.184.215.14"], "dev.acme.test": ["127.0.0.1"], "localhost": ["127.0.0.1"]})
    resolve_with(container, dns)
    pay = f"http://127.0.0.1:{billing.port}/sandbox/orders/PED-AAAABBBB/pay"

    fields = [refusal(cluster, url) for url in (
        pay, f"http://localhost:{billing.port}/", f"http://[::1]:{billing.port}/", f"http://dev.acme.test:{billing.port}/",
        "http://169.254.169.254/latest/meta-data/",
    )]
    put_settings(cluster, {"url": f"http://hooks.acme.example:{billing.port}/sandbox/orders/PED-AAAABBBB/pay"},
                 {"url": f"http://dev.acme.test:{developers.port}/hooks/portal"})
    dns.names["hooks.acme.example"] = ["127.0.0.1"]
    publish(config["AMQP_URI"], "subscriptions", canceled())

    own_port = f"port {billing.port} is the portal's own"
    assert [field["endpoints"]["1"]["url"] for field in fields] == [
        [f"address not allowed: 127.0.0.1, {own_port}"],
        [f"address not allowed: localhost resolves to 127.0.0.1, {own_port}"],
        [f"address not allowed: ::1, {own_port}"],
        [f"address not allowed: dev.acme.test resolves to 127.0.0.1, {own_port}"],
        ["address not allowed: 169.254.169.254"],
    ]
    assert failed.get(timeout=20).payload["data"]["last_error"] == (
        f"address not allowed: hooks.acme.example resolves to 127.0.0.1, {own_port}")
    wait_until(lambda: developers.requests, message="the developer's receiver")
    assert billing.requests == []
    assert {d["status"] for d in deliveries(cluster)} == {"failed", "delivered"}


def test_endpoints_saved_before_these_rules_get_nothing_delivered_or_replayed(
        notifications, receiver, event_queue, portalctl):
    failed = event_queue("notifications", "webhook_failed")
    config, _, cluster = notifications(**PRODUCTION)
    endpoint = receiver(200)
    with_credentials = endpoint.url.replace("http://", "http://merchant:s3cret@") + "/basic"
    save_endpoints_unchecked(config["NOTIFICATIONS_DB_URL"], MERCHANT_ID, endpoint.url, with_credentials)

    publish(config["AMQP_URI"], "subscriptions", canceled())

    given_up = [failed.get(timeout=20).payload["data"] for _ in range(2)]
    errors = {d["url"]: d["last_error"] for d in deliveries(cluster)}
    assert errors == {endpoint.url: "address not allowed: 127.0.0.1",
                      with_credentials: "credentials in the URL are not allowed"}
    assert sorted(event["last_error"] for event in given_up) == sorted(errors.values())

    for replayed in deliveries(cluster):
        portalctl(config, "webhooks", "replay", replayed["id"])
    again = wait_until(lambda: [d for d in deliveries(cluster) if d["status"] == "failed" and len(d["log"]) == 2][1:]
                       and deliveries(cluster), message="both replays refused")
    assert {d["url"]: [attempt["error"] for attempt in d["log"]] for d in again} == {
        url: [error, error] for url, error in errors.items()}
    assert endpoint.requests == []


# -- the merchant's own delivery log (the merchant API's deliveries routes)

def test_a_merchant_pages_and_filters_its_own_deliveries_and_replays_one(notifications, receiver):
    config, _, cluster = notifications()
    endpoint = receiver(200)
    put_settings(cluster, {"url": endpoint.url})
    cluster.notifications.put_webhook_settings("beta-software", {"endpoints": [{"url": endpoint.url + "/beta"}]})
    publish(config["AMQP_URI"], "subscriptions", canceled(), canceled(), canceled("beta-software"))
    publish(config["AMQP_URI"], "billing", order_paid())
    wait_until(lambda: len(endpoint.requests) == 4, message="four deliveries")
    wait_until(lambda: {d["status"] for d in cluster.notifications.list_webhook_deliveries()} == {"delivered"},
               message="all delivered")
    page = cluster.notifications.list_merchant_deliveries

    first = page(MERCHANT_ID, limit=2)
    rest = page(MERCHANT_ID, cursor=first["next_cursor"], limit=2)
    listed = first["deliveries"] + rest["deliveries"]
    assert len(first["deliveries"]) == 2 and rest["next_cursor"] is None
    assert [d["id"] for d in listed] == [d["id"] for d in deliveries(cluster)]  # newest first, each once
    assert all(d["merchant_id"] == MERCHANT_ID and d["attempts"] == 1 and d["last_error"] is None for d in listed)
    [paid] = page(MERCHANT_ID, event_type="order_paid")["deliveries"]
    assert paid["event_type"] == "order_paid" and paid["log"][0]["status_code"] == 200
    assert page(MERCHANT_ID, status="failed") == {"deliveries": [], "next_cursor": None}

    [beta] = page("beta-software")["deliveries"]
    with pytest.raises(NotFound):
        cluster.notifications.replay_merchant_delivery(MERCHANT_ID, beta["id"])
    with pytest.raises(ValidationFailed) as refused:
        page(MERCHANT_ID, cursor=beta["id"])
    assert list(refused.value.fields) == ["cursor"]

    replayed = cluster.notifications.replay_merchant_delivery(MERCHANT_ID, paid["id"])
    assert (replayed["id"], replayed["status"]) == (paid["id"], "pending")
    wait_until(lambda: len(endpoint.requests) == 5, message="the replay")
    assert json.loads(endpoint.requests[-1]["body"])["type"] == "order_paid"


def test_a_merchants_replay_to_an_address_the_portal_may_not_reach_is_refused_naming_url(
        notifications, receiver, event_queue):
    failed = event_queue("notifications", "webhook_failed")
    config, _, cluster = notifications(**PRODUCTION)
    endpoint = receiver(200)
    save_endpoints_unchecked(config["NOTIFICATIONS_DB_URL"], MERCHANT_ID, endpoint.url)
    publish(config["AMQP_URI"], "subscriptions", canceled())
    failed.get(timeout=20)
    [delivery] = deliveries(cluster)

    with pytest.raises(RuleRefused) as refused:
        cluster.notifications.replay_merchant_delivery(MERCHANT_ID, delivery["id"])

    assert refused.value.code == "destination_refused"
    assert refused.value.fields == {"url": ["address not allowed: 127.0.0.1"]}
    assert deliveries(cluster) == [delivery]  # not queued again: still failed, one attempt
    assert endpoint.requests == []
