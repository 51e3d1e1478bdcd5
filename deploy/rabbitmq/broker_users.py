"""The portal's broker users and what each may do on the bus: the one source of
`deploy/rabbitmq/definitions.json` (compose, and any broker loaded with
`rabbitmqctl import_definitions`) and `deploy/k8s/base/rabbitmq-users.yaml` (the
RabbitMQ messaging topology operator's resources). After editing it:

    python deploy/rabbitmq/broker_users.py     # writes both; tests/deploy checks they match

RabbitMQ's permissions (configure, write, read: regexes on exchange and queue names)
cannot tell one RPC from another, since every request goes to the one `nameko-rpc`
exchange; its topic permissions can: on a topic exchange, publishing checks the
routing key (`<service>.<method>`) against the user's write regex, and binding a
queue checks the binding key against its read regex. So each user may publish only
the requests it has a reason to send.

Passwords are never here: compose creates each user with the password its
environment names (deploy/compose/rabbitmq-users.sh); Kubernetes takes each from the
Secret `portal-rabbitmq-<user>` (keys `username`, `password`), created out of band.
"""
import json
import re
import sys
from pathlib import Path

RPC_EXCHANGE = "nameko-rpc"
SERVICES = ("auth", "subscriptions", "billing", "notifications")
GATEWAY = "gateway"
OPERATOR = "operator"  # portalctl
EVENTS_READER = "events-reader"  # internal systems following the events
# The queues an events reader may declare, bind to the event exchanges and consume.
EVENTS_READER_QUEUE_PREFIX = "events-reader."
DEAD_LETTERS = "portal.dead-letters"
UNROUTED = "portal.unrouted"
# The routing key of a nameko reply queue (ClusterRpcProxy's, portalctl's): a uuid4.
# A service answers such a caller through the RPC exchange with this key.
NAMEKO_REPLY_KEY = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
# nameko's reply queue of a standalone proxy: rpc.reply-standalone_rpc_proxy-<uuid>.
NAMEKO_REPLY_QUEUE = rf"rpc\.reply-standalone_rpc_proxy-{NAMEKO_REPLY_KEY}"
# What the gateway's readiness probe publishes on the RPC exchange: a key that no
# binding matches (services bind `<service>.*`), so the broker returns it at once.
ROUND_TRIP_KEY = "amq.portal.round-trip"

# Every RPC each user may send: {caller: {service: methods}}. Anything else it
# publishes on the RPC exchange is refused by the broker.
CALLS = {
    GATEWAY: {
        "auth": (
            "ping", "request_login_link", "describe_login_link", "redeem_login", "get_session", "end_session",
            "list_sessions", "end_session_by_id", "issue_sso_ticket", "redeem_sso_ticket", "authenticate_api_key",
        ),
        "subscriptions": (
            "ping", "get_merchant", "put_merchant_settings", "list_offers", "set_plan_change_options",
            "upsert_contact", "create_subscription", "list_subscriptions", "get_subscription", "plan_options",
            "quote_plan_change", "change_plan", "undo_plan_change", "change_payment_method", "begin_card_update",
            "cancel", "undo_cancel", "activity", "create_offer", "update_offer",
            # the merchant's support API
            "find_customers", "customer_subscriptions", "merchant_activity", "merchant_cancel",
            "merchant_undo_cancel", "note_login_link_requested",
            "merchant_quote_plan_change", "merchant_change_plan",
        ),
        "billing": (
            "ping", "record_order", "list_orders", "get_order", "request_refund", "list_refunds",
            "confirm_manual_refund",
            "merchant_customer_orders",  # the merchant's support API
        ),
        "notifications": (
            "ping", "get_webhook_settings", "put_webhook_settings", "list_merchant_deliveries",
            "replay_merchant_delivery",
        ),
    },
    "auth": {
        "subscriptions": ("customer_exists", "get_merchant"),
        "notifications": ("send_login_email",),
    },
    "subscriptions": {
        "billing": (
            "charge", "charge_batch", "orders_by_keys", "register_card", "get_payment_method",
            "issue_card_entry_ticket",
        ),
    },
    "billing": {
        "subscriptions": ("get_subscription", "change_payment_method"),
    },
    "notifications": {
        "subscriptions": ("get_subscription", "get_merchant"),
        "billing": ("get_order",),
    },
    # What portalctl calls (portalctl/cli.py, portalctl/demo.py) and the operators' jobs.
    OPERATOR: {
        "auth": ("ping", "create_api_key", "revoke_api_key", "list_api_keys"),
        "subscriptions": (
            "ping", "get_merchant", "upsert_merchant", "upsert_offer", "run_renewals", "payments_not_applied",
            "create_merchant", "list_merchants", "list_offers", "create_offer", "update_offer",
        ),
        "billing": (
            "ping", "reconcile", "set_processor_account", "list_processor_accounts", "rotate_credential_keys",
            "list_failed_refunds",
        ),
        "notifications": ("ping", "list_outbox", "retry", "list_webhook_deliveries", "replay_webhook"),
    },
}

# The event exchanges each service's handlers consume (services/*/service.py).
CONSUMES = {
    "auth": (),
    "subscriptions": ("billing",),
    "billing": ("subscriptions",),
    "notifications": ("subscriptions", "billing"),
}

USERS = (*SERVICES, GATEWAY, OPERATOR, EVENTS_READER)


def events_exchange(service):
    return f"{service}.events"


def routing_keys(user):
    """Every `<service>.<method>` the user may publish on the RPC exchange."""
    return sorted(f"{service}.{method}" for service, methods in CALLS.get(user, {}).items() for method in methods)


def one_of(*patterns):
    """A regex matching exactly one of `patterns` (regexes themselves), or nothing."""
    return f"^({'|'.join(patterns)})$" if patterns else "^$"


def names(*names_):
    return [re.escape(name) for name in names_]


def vhost_permissions(user):
    """{configure, write, read} regexes of `user` on the vhost's exchanges and queues."""
    rpc = re.escape(RPC_EXCHANGE)
    shared = names(DEAD_LETTERS, UNROUTED)
    if user in SERVICES:
        own_queues = [re.escape(f"rpc-{user}"), rf"evt-[a-z_]+-[a-z_]+--{re.escape(user)}\..+"]
        sources = names(*(events_exchange(source) for source in CONSUMES[user]))
        own_events = names(events_exchange(user))
        return {
            # Declares: the RPC exchange, its own RPC and event queues, its own event
            # exchange, the exchanges it consumes (declared with their queues) and the
            # shared dead-letter and unrouted exchanges and queues.
            "configure": one_of(rpc, *own_queues, *own_events, *sources, *shared),
            # Publishes: requests and nameko replies (RPC exchange), direct replies
            # (the default exchange: RabbitMQ's direct reply-to), its events, unrouted
            # events; binds its own queues (and the shared ones).
            "write": one_of(rpc, "amq\\.default", *own_queues, *own_events, *shared),
            # Binds to the RPC exchange, the exchanges it consumes and the shared ones;
            # consumes its own queues.
            "read": one_of(rpc, *own_queues, *sources, *shared),
        }
    if user == GATEWAY:
        # Calls only: declares the RPC exchange (its link does), answers come by direct
        # reply-to, which needs no permission.
        return {"configure": one_of(rpc), "write": one_of(rpc), "read": "^$"}
    if user == OPERATOR:
        event_exchanges = names(*(events_exchange(service) for service in SERVICES))
        own_queues = [NAMEKO_REPLY_QUEUE, r"amq\.gen-.+"]
        return {
            # Its reply queue (declared with the RPC exchange); `portalctl events`
            # declares the event exchanges, a server-named queue to tail them, and the
            # dead-letter and unrouted queues.
            "configure": one_of(rpc, *own_queues, *event_exchanges, *shared),
            # Requests; sending dead letters back (default exchange) and unrouted
            # events back to their exchange.
            "write": one_of(rpc, "amq\\.default", *own_queues, *event_exchanges, *shared),
            "read": one_of(rpc, *own_queues, *event_exchanges, *shared),
        }
    if user == EVENTS_READER:
        own_queues = [rf"{re.escape(EVENTS_READER_QUEUE_PREFIX)}.+"]
        event_exchanges = names(*(events_exchange(service) for service in SERVICES))
        return {
            "configure": one_of(*own_queues),
            "write": one_of(*own_queues),
            "read": one_of(*own_queues, *event_exchanges),
        }
    raise KeyError(user)


def topic_permissions(user):
    """{write, read} regexes of `user` on the RPC exchange's routing and binding keys,
    or None for a user that never touches it."""
    keys = [re.escape(key) for key in routing_keys(user)]
    if user in SERVICES:
        # Its calls and its answers to nameko callers; binds its queue with `<user>.*`.
        return {"write": one_of(*keys, NAMEKO_REPLY_KEY), "read": one_of(re.escape(f"{user}.*"))}
    if user == GATEWAY:
        return {"write": one_of(*keys, re.escape(ROUND_TRIP_KEY)), "read": "^$"}
    if user == OPERATOR:
        return {"write": one_of(*keys), "read": one_of(NAMEKO_REPLY_KEY)}
    # Not even a binding key: an events reader has no read permission on the RPC
    # exchange, this only makes the refusal explicit.
    return {"write": "^$", "read": "^$"}


EXCHANGES = (
    (RPC_EXCHANGE, "topic"),
    *((events_exchange(service), "topic") for service in SERVICES),
    (DEAD_LETTERS, "topic"),
    (UNROUTED, "fanout"),
)


def definitions(vhost="/"):
    """RabbitMQ definitions (the format of `rabbitmqctl import_definitions`) without
    users: they are created with their passwords first, elsewhere."""
    return {
        "vhosts": [{"name": vhost}],
        "permissions": [{"user": user, "vhost": vhost, **vhost_permissions(user)} for user in USERS],
        "topic_permissions": [
            {"user": user, "vhost": vhost, "exchange": RPC_EXCHANGE, **topic_permissions(user)} for user in USERS
        ],
        # Declared before any process runs, exactly as the processes declare them: an
        # events reader may bind to an event exchange but not declare it.
        "exchanges": [
            {"name": name, "vhost": vhost, "type": kind, "durable": True, "auto_delete": False, "internal": False,
             "arguments": {}}
            for name, kind in EXCHANGES
        ],
    }


CLUSTER = {"name": "portal-rabbitmq"}


def credentials_secret(user):
    return f"portal-rabbitmq-{user}"


def kubernetes_resources(vhost="/"):
    """The messaging topology operator's User, Permission, TopicPermission and
    Exchange resources for the same definitions."""
    resources = []
    for user in USERS:
        name = f"portal-{user}"
        resources.append({
            "apiVersion": "rabbitmq.com/v1beta1", "kind": "User", "metadata": {"name": name},
            "spec": {"rabbitmqClusterReference": CLUSTER, "tags": [],
                     "importCredentialsSecret": {"name": credentials_secret(user)}},
        })
        resources.append({
            "apiVersion": "rabbitmq.com/v1beta1", "kind": "Permission", "metadata": {"name": name},
            "spec": {"vhost": vhost, "user": user, "permissions": vhost_permissions(user),
                     "rabbitmqClusterReference": CLUSTER},
        })
        resources.append({
            "apiVersion": "rabbitmq.com/v1beta1", "kind": "TopicPermission", "metadata": {"name": f"{name}-rpc"},
            "spec": {"vhost": vhost, "user": user,
                     "permissions": {"exchange": RPC_EXCHANGE, **topic_permissions(user)},
                     "rabbitmqClusterReference": CLUSTER},
        })
    for exchange, kind in EXCHANGES:
        resources.append({
            "apiVersion": "rabbitmq.com/v1beta1", "kind": "Exchange",
            "metadata": {"name": "portal-" + exchange.replace(".", "-")},
            "spec": {"name": exchange, "vhost": vhost, "type": kind, "durable": True, "autoDelete": False,
                     "rabbitmqClusterReference": CLUSTER},
        })
    return resources


HERE = Path(__file__).resolve().parent
DEFINITIONS_FILE = HERE / "definitions.json"
KUBERNETES_FILE = HERE.parent / "k8s" / "base" / "rabbitmq-users.yaml"
GENERATED = "# Generated by deploy/rabbitmq/broker_users.py: edit that file and run it.\n"


def definitions_text():
    return json.dumps(definitions(), indent=2) + "\n"


def kubernetes_text():
    import yaml

    documents = [yaml.safe_dump(resource, sort_keys=False) for resource in kubernetes_resources()]
    return GENERATED + "---\n".join(documents)


if __name__ == "__main__":
    DEFINITIONS_FILE.write_text(definitions_text())
    KUBERNETES_FILE.write_text(kubernetes_text())
    print(f"wrote {DEFINITIONS_FILE} and {KUBERNETES_FILE}", file=sys.stderr)
