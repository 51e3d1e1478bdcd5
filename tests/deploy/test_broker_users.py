"""The broker users (deploy/rabbitmq/broker_users.py, the one source): the generated
definitions and Kubernetes resources are current, each process connects as its own
user in compose and Kubernetes, and the permissions agree with the code (every RPC a
user may send exists; an entrypoint that names its callers is open to them only).
The fault suite (tests/faults/test_broker_users.py) proves them on a real broker."""
import importlib
import re
from urllib.parse import urlsplit

import pytest
import yaml

from services.common.rpc import PortalRpc
from support.broker_users import broker_users_module

TOPOLOGY_FIELDS = {
    # The fields of the operator's CRDs (rabbitmq.com/v1beta1) the portal sets.
    "User": {"tags", "rabbitmqClusterReference", "importCredentialsSecret"},
    "Permission": {"vhost", "user", "permissions", "rabbitmqClusterReference"},
    "TopicPermission": {"vhost", "user", "permissions", "rabbitmqClusterReference"},
    "Exchange": {"name", "vhost", "type", "durable", "autoDelete", "rabbitmqClusterReference"},
}
PERMISSION_FIELDS = {"Permission": {"configure", "write", "read"}, "TopicPermission": {"exchange", "write", "read"}}


@pytest.fixture(scope="module")
def users():
    return broker_users_module()


def rpc_entrypoints(services_in_code):
    """{service: {method: its PortalRpc entrypoint}} of every service class."""
    found = {}
    for service, target in services_in_code.items():
        module, class_name = target.split(":")
        service_class = getattr(importlib.import_module(module), class_name)
        found[service] = {
            name: extension
            for name in dir(service_class)
            for extension in getattr(getattr(service_class, name), "nameko_entrypoints", ())
            if isinstance(extension, PortalRpc)
        }
    return found


def test_the_generated_files_are_current(users):
    assert users.DEFINITIONS_FILE.read_text() == users.definitions_text()
    assert users.KUBERNETES_FILE.read_text() == users.kubernetes_text()


def test_every_rpc_a_user_may_send_exists(users, services_in_code):
    entrypoints = rpc_entrypoints(services_in_code)
    for user in users.USERS:
        for key in users.routing_keys(user):
            service, method = key.split(".")
            assert method in entrypoints[service], f"{user} may send {key}, which no entrypoint serves"


def test_an_entrypoint_that_names_its_callers_may_be_sent_by_them_only(users, services_in_code):
    for service, methods in rpc_entrypoints(services_in_code).items():
        for method, entrypoint in methods.items():
            if entrypoint.callers is None:
                continue
            senders = {user for user in users.USERS if f"{service}.{method}" in users.routing_keys(user)}
            assert senders == set(entrypoint.callers), f"{service}.{method}"


def test_an_events_reader_may_write_to_its_own_queues_only(users):
    write = re.compile(users.vhost_permissions(users.EVENTS_READER)["write"])
    assert write.match("events-reader.audit")
    for exchange in ("nameko-rpc", "amq.default", "billing.events", "portal.unrouted", "portal.dead-letters"):
        assert not write.match(exchange)
    assert users.routing_keys(users.EVENTS_READER) == []


def test_topology_resources_set_only_the_operators_fields(base_resources, users):
    kinds = set()
    for resource in base_resources:
        kind = resource["kind"]
        if resource["apiVersion"] != "rabbitmq.com/v1beta1" or kind not in TOPOLOGY_FIELDS:
            continue
        kinds.add(kind)
        assert set(resource["spec"]) <= TOPOLOGY_FIELDS[kind], resource["metadata"]["name"]
        assert resource["spec"]["rabbitmqClusterReference"] == {"name": "portal-rabbitmq"}
        if kind in PERMISSION_FIELDS:
            assert set(resource["spec"]["permissions"]) <= PERMISSION_FIELDS[kind]
            assert resource["spec"]["user"] in users.USERS
    assert kinds == set(TOPOLOGY_FIELDS)


def test_every_deployment_connects_as_its_own_user(deployments, base_resources, users):
    imported = {
        resource["spec"]["importCredentialsSecret"]["name"]
        for resource in base_resources if resource["kind"] == "User"
    }
    secrets = []
    for name, deployment in deployments.items():
        (main,) = deployment["spec"]["template"]["spec"]["containers"]
        env = {item["name"]: item.get("valueFrom", item.get("value")) for item in main["env"]}
        assert urlsplit(env["AMQP_URI"]).username == "$(RABBITMQ_USERNAME)"
        secret = users.credentials_secret(name)
        for variable, key in (("RABBITMQ_USERNAME", "username"), ("RABBITMQ_PASSWORD", "password")):
            assert env[variable] == {"secretKeyRef": {"name": secret, "key": key}}, name
        assert secret in imported
        secrets.append(secret)
    assert len(set(secrets)) == len(secrets) == len(deployments)


def test_every_compose_process_connects_as_its_own_user(compose, users):
    for name, service in compose["services"].items():
        uri = service.get("environment", {}).get("AMQP_URI")
        if "build" in service and name not in ("migrate", "mailsink"):
            assert urlsplit(uri).username == name
            assert name in users.USERS
        else:
            assert uri is None, name
    rabbitmq = compose["services"]["rabbitmq"]
    for user in users.USERS:
        assert f"RABBITMQ_{user.upper().replace('-', '_')}_PASSWORD" in rabbitmq["environment"]
    assert "./rabbitmq/definitions.json:/etc/rabbitmq/portal-definitions.json:ro" in rabbitmq["volumes"]


def test_the_compose_broker_script_creates_every_user(users):
    script = (users.HERE.parent / "compose" / "rabbitmq-users.sh").read_text()
    (loop,) = [line for line in script.splitlines() if line.startswith("for user in ")]
    assert loop.removeprefix("for user in ").removesuffix("; do").split() == list(users.USERS)


def test_the_kubernetes_file_is_one_document_per_resource(users):
    documents = [document for document in yaml.safe_load_all(users.KUBERNETES_FILE.read_text()) if document]
    assert documents == users.kubernetes_resources()
