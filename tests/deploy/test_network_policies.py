"""Who reaches the portal's pods on Kubernetes: X-Forwarded-For believed only from the
proxies an overlay names, and NetworkPolicies that admit the gateway's and billing's
HTTP only from the ingress controller's namespace, metrics only from Prometheus', and
still let every pod reach DNS, the broker and its own database."""
import ipaddress
import re

from services.common.config import REPO_ROOT
from services.common.migrations import SERVICES_WITH_DATABASE

INGRESS_NAMESPACE = "ingress-nginx"
MONITORING_NAMESPACE = "monitoring"
PRIVATE_RANGES = [ipaddress.ip_network(net) for net in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]
# Where a port may be reached from, by the pod's container port name.
ADMITTED = {"http": INGRESS_NAMESPACE, "metrics": MONITORING_NAMESPACE}
OPEN_EGRESS = {"billing", "notifications"}
# The cluster's DNS pods (in kube-system, not the portal's namespace).
DNS_SERVER = {"k8s-app": "kube-dns"}


def selects(selector, labels):
    """Kubernetes' label selector semantics (matchLabels and matchExpressions)."""
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        present = expression["key"] in labels
        value = labels.get(expression["key"])
        if not {
            "In": present and value in expression.get("values", []),
            "NotIn": not present or value not in expression.get("values", []),
            "Exists": present,
            "DoesNotExist": not present,
        }[expression["operator"]]:
            return False
    return True


def policies(base_resources, direction, pod_labels):
    return [
        policy["spec"] for policy in base_resources
        if policy["kind"] == "NetworkPolicy" and direction in policy["spec"]["policyTypes"]
        and selects(policy["spec"]["podSelector"], pod_labels)
    ]


def portal_pods(base_resources):
    """{name: (pod labels, container port names)} of every Deployment and Job."""
    pods = {}
    for workload in base_resources:
        if workload["kind"] in ("Deployment", "Job"):
            template = workload["spec"]["template"]
            (main,) = template["spec"]["containers"]
            pods[workload["metadata"]["name"]] = (
                template["metadata"]["labels"], {port["name"] for port in main.get("ports", [])})
    return pods


def port_covered(rule_ports, port, protocol="TCP"):
    return not rule_ports or any(
        entry.get("port") in (None, port) and entry.get("protocol", "TCP") == protocol for entry in rule_ports)


def namespace_of(peer):
    """The one namespace a peer admits by name, or None for any other kind of peer."""
    if set(peer) != {"namespaceSelector"} or set(peer["namespaceSelector"]) != {"matchLabels"}:
        return None
    labels = peer["namespaceSelector"]["matchLabels"]
    return labels.get("kubernetes.io/metadata.name") if len(labels) == 1 else None


def egress_allowed(base_resources, pod_labels, target_labels, same_namespace, port, protocol="TCP"):
    restricting = policies(base_resources, "Egress", pod_labels)
    if not restricting:
        return True
    for spec in restricting:
        for rule in spec.get("egress", []):
            if not port_covered(rule.get("ports"), port, protocol):
                continue
            peers = rule.get("to")
            if not peers or any(
                same_namespace and set(peer) == {"podSelector"} and selects(peer["podSelector"], target_labels)
                for peer in peers
            ):
                return True
    return False


# -- TRUSTED_PROXIES

def test_the_base_believes_no_forwarded_for_until_an_overlay_names_the_proxies(base_resources, manifests):
    config = manifests.of_kind(base_resources, "ConfigMap")["portal-config"]["data"]
    assert "TRUSTED_PROXIES" not in config
    assert re.search(r"^TRUSTED_PROXIES: !raw_env_var \"\$\{TRUSTED_PROXIES:\}\"$",
                     (REPO_ROOT / "config.yaml").read_text(), re.MULTILINE)


def test_production_trusts_a_narrow_range_never_a_whole_private_one(manifests):
    (config,) = [patch for _, patch in manifests.overlay_patches(manifests.production) if patch["kind"] == "ConfigMap"]
    networks = [ipaddress.ip_network(item.strip()) for item in config["data"]["TRUSTED_PROXIES"].split(",")]
    assert networks
    for network in networks:
        assert not any(network.supernet_of(private) for private in PRIVATE_RANGES
                       if network.version == private.version), network


# -- NetworkPolicies

def test_every_portal_pod_refuses_incoming_traffic_unless_admitted(base_resources):
    for name, (labels, _) in portal_pods(base_resources).items():
        assert policies(base_resources, "Ingress", labels), f"{name} is not isolated"


def test_gateway_and_billing_http_admits_the_ingress_namespace_only(base_resources):
    pods = portal_pods(base_resources)
    for name in ("gateway", "billing"):
        labels, ports = pods[name]
        assert "http" in ports
        rules = [rule for spec in policies(base_resources, "Ingress", labels) for rule in spec.get("ingress", [])
                 if port_covered(rule.get("ports"), "http")]
        assert rules, f"nothing reaches {name}'s http port"
        for rule in rules:
            assert [namespace_of(peer) for peer in rule["from"]] == [INGRESS_NAMESPACE], name


def test_every_admitted_port_is_a_named_port_of_the_pod_from_its_one_namespace(base_resources):
    for name, (labels, ports) in portal_pods(base_resources).items():
        if "metrics" in ports:
            assert any(entry["port"] == "metrics" for spec in policies(base_resources, "Ingress", labels)
                       for rule in spec.get("ingress", []) for entry in rule.get("ports", [])), \
                f"Prometheus cannot scrape {name}"
        for spec in policies(base_resources, "Ingress", labels):
            for rule in spec.get("ingress", []):
                assert rule.get("ports") and rule.get("from"), f"{name}: a rule open to every port or peer"
                for entry in rule["ports"]:
                    assert entry["port"] in ports, (name, entry)
                    assert [namespace_of(peer) for peer in rule["from"]] == [ADMITTED[entry["port"]]], name


def test_every_portal_pod_still_reaches_dns_the_broker_and_its_own_database(base_resources):
    rabbitmq = [resource["metadata"]["name"] for resource in base_resources if resource["kind"] == "RabbitmqCluster"]
    databases = {resource["spec"]["bootstrap"]["initdb"]["database"]: resource["metadata"]["name"]
                 for resource in base_resources if resource["kind"] == "Cluster"}
    for name, (labels, _) in portal_pods(base_resources).items():
        # Only billing (its processor) and notifications (SMTP, webhooks) go further.
        assert policies(base_resources, "Egress", labels) or name in OPEN_EGRESS, f"{name} may connect anywhere"
        for protocol in ("UDP", "TCP"):
            assert egress_allowed(base_resources, labels, DNS_SERVER, False, 53, protocol), name
        if name != "portal-migrate":
            (broker,) = rabbitmq
            assert egress_allowed(base_resources, labels, {"app.kubernetes.io/name": broker}, True, 5672), name
        own = SERVICES_WITH_DATABASE if name == "portal-migrate" else [name] if name in SERVICES_WITH_DATABASE else []
        for service in own:
            assert egress_allowed(base_resources, labels, {"cnpg.io/cluster": databases[service]}, True, 5432), name
        for service in set(SERVICES_WITH_DATABASE) - set(own):
            other = {"cnpg.io/cluster": databases[service]}
            if policies(base_resources, "Egress", labels):
                assert not egress_allowed(base_resources, labels, other, True, 5432), f"{name} reaches {service}'s database"
