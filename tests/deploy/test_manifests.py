"""The Kubernetes manifests: core resources against the Kubernetes schemas, custom
resources against the fields the portal relies on, and the references between them."""
import copy
import re
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest
from kubernetes_validate.utils import schema_contents
from referencing import Registry, Resource

from services.common.config import REPO_ROOT, load_config
from services.common.migrations import SERVICES_WITH_DATABASE, db_url_key

RABBITMQ = ("rabbitmq.com/v1beta1", "RabbitmqCluster")
POSTGRES = ("postgresql.cnpg.io/v1", "Cluster")
# The messaging topology operator's kinds: the broker's users and what each may do
# (tests/deploy/test_broker_users.py checks them).
TOPOLOGY = {("rabbitmq.com/v1beta1", kind) for kind in ("User", "Permission", "TopicPermission", "Exchange")}
CUSTOM_RESOURCES = {RABBITMQ, POSTGRES, *TOPOLOGY}
IMAGE = "subscription-portal"
READINESS_ON_OWN_BROKER_LINK = {"exec": {"command": ["python", "-m", "services.common.probe", "ready"]}}


def kind_of(resource):
    return resource["apiVersion"], resource["kind"]


def custom(resources, kind):
    return {resource["metadata"]["name"]: resource for resource in resources if kind_of(resource) == kind}


def container(deployment):
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return only


def pod_spec(workload):
    return workload["spec"]["template"]["spec"]


def env_sources(workload):
    """{variable: its valueFrom or value} of the workload's container."""
    (main,) = pod_spec(workload)["containers"]
    return {item["name"]: item.get("valueFrom", item.get("value")) for item in main.get("env", [])}


def dockerfile_user_id():
    users = re.findall(r"^USER\s+(\d+)", (REPO_ROOT / "deploy" / "Dockerfile").read_text(), re.MULTILINE)
    return int(users[-1])


def validate_partial(resource, version):
    """Strict schema validation that waives `required`: a patch names only what it changes,
    but every field it sets must exist and have the right type."""
    api_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", resource["apiVersion"])
    folder = f"kubernetes-json-schema/v{version}.0-local-strict"
    schema = schema_contents(f"{folder}/{resource['kind'].lower()}-{api_version}.json", version)
    definitions = schema_contents(f"{folder}/_definitions.json", version)
    registry = Resource.from_contents(definitions) @ (Resource.from_contents(schema) @ Registry())
    validator = jsonschema.validators.extend(
        jsonschema.Draft202012Validator, {"required": lambda *_: iter(())},
    )(schema, registry=registry)
    return [f"{'.'.join(map(str, error.path))}: {error.message}" for error in validator.iter_errors(resource)]


def leaf_paths(value, prefix=()):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaf_paths(item, (*prefix, key))
    else:
        yield prefix


def has_path(value, path):
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return False
        value = value[key]
    return True


# -- every document

def test_base_resource_validates_against_the_kubernetes_schema(base_resource, manifests):
    if kind_of(base_resource) in CUSTOM_RESOURCES:
        return  # no schema ships for operators' kinds: the tests below check their fields
    kubernetes_validate.validate(base_resource, manifests.kubernetes_version, strict=True)


def test_the_validator_rejects_an_unknown_field_and_a_wrong_type(deployments, manifests):
    misspelt = copy.deepcopy(deployments["gateway"])
    misspelt["spec"]["replica"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(misspelt, manifests.kubernetes_version, strict=True)
    mistyped = copy.deepcopy(deployments["gateway"])
    container(mistyped)["ports"][0]["containerPort"] = "eight thousand"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(mistyped, manifests.kubernetes_version, strict=True)


def test_every_custom_resource_is_one_the_tests_check(base_resources):
    core_groups = ("v1", "apps/v1", "batch/v1", "autoscaling/v2", "policy/v1", "networking.k8s.io/v1")
    unchecked = {kind_of(resource) for resource in base_resources} - CUSTOM_RESOURCES
    assert {api_version for api_version, _ in unchecked} <= set(core_groups)


def test_the_base_kustomization_lists_every_manifest_file(manifests):
    listed = set(manifests.kustomization(manifests.base)["resources"])
    present = {path.name for path in manifests.base.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


# -- Deployments

def test_deployment_runs_its_process_from_the_portal_image(deployment):
    main = container(deployment)
    assert main["image"] == IMAGE
    assert main["args"] == [deployment["metadata"]["name"]]


def test_deployment_has_resource_requests_and_limits(deployment):
    resources = container(deployment)["resources"]
    for bound in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(resources[bound]), bound


def test_deployment_readiness_is_its_own_broker_link_and_liveness_is_its_own_health(deployment):
    main = container(deployment)
    readiness, liveness = main["readinessProbe"], main["livenessProbe"]
    if "http" in port_numbers(main):  # the gateway's /readyz, billing's broker link
        own_readiness = [READINESS_ON_OWN_BROKER_LINK["exec"], {"path": "/readyz", "port": "http"}]
        assert readiness.get("exec", readiness.get("httpGet")) in own_readiness
        assert liveness["httpGet"] == {"path": "/healthz", "port": "http"}
    else:
        assert readiness["exec"] == READINESS_ON_OWN_BROKER_LINK["exec"]
        assert liveness["exec"]["command"] == ["python", "-m", "services.common.probe", "alive"]
    # A liveness check that fails only after a while: a restart is the last resort.
    assert liveness["periodSeconds"] * liveness["failureThreshold"] >= 60


def port_numbers(main):
    return {port["name"]: port["containerPort"] for port in main.get("ports", [])}


def test_deployment_exposes_its_prometheus_metrics(deployment, base_resources, manifests):
    metrics_port = manifests.of_kind(base_resources, "ConfigMap")["portal-config"]["data"]["METRICS_PORT"]
    assert port_numbers(container(deployment))["metrics"] == int(metrics_port)
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {"prometheus.io/scrape": "true", "prometheus.io/port": metrics_port}


# What a process needs past its stop grace to kill what is left and exit.
EXIT_MARGIN_SECONDS = 5


def test_deployment_stops_gracefully(deployment, base_resources, manifests):
    spec = pod_spec(deployment)
    drain = container(deployment).get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", ["sleep", "0"])
    assert drain[0] == "sleep"
    # The kubelet's SIGKILL comes only after the process's own stop grace has run out.
    settings = manifests.of_kind(base_resources, "ConfigMap")["portal-config"]["data"]
    grace = float(settings.get("STOP_GRACE_SECONDS", load_config()["STOP_GRACE_SECONDS"]))
    assert spec["terminationGracePeriodSeconds"] >= int(drain[1]) + grace + EXIT_MARGIN_SECONDS


def test_deployment_runs_as_the_images_user_on_a_read_only_root(deployment):
    spec = pod_spec(deployment)
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == dockerfile_user_id()
    security = container(deployment)["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    mounts = {mount["mountPath"] for mount in container(deployment)["volumeMounts"]}
    assert mounts == {"/tmp"}


def test_deployment_is_scaled_by_its_autoscaler_and_protected_by_its_budget(deployment, base_resources, manifests):
    name = deployment["metadata"]["name"]
    assert "replicas" not in deployment["spec"], "the autoscaler owns the replica count"
    autoscaler = manifests.of_kind(base_resources, "HorizontalPodAutoscaler")[name]
    assert autoscaler["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
    assert 2 <= autoscaler["spec"]["minReplicas"] <= autoscaler["spec"]["maxReplicas"]
    budget = manifests.of_kind(base_resources, "PodDisruptionBudget")[name]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert budget["spec"]["maxUnavailable"] < autoscaler["spec"]["minReplicas"]


def test_deployment_gets_the_broker_and_only_its_own_database(deployment, base_resources):
    name = deployment["metadata"]["name"]
    env = env_sources(deployment)
    (rabbitmq,) = custom(base_resources, RABBITMQ)
    assert urlsplit(env["AMQP_URI"]).hostname == rabbitmq
    database_urls = {key for key in env if key.endswith("_DB_URL")}
    if name in SERVICES_WITH_DATABASE:
        assert database_urls == {db_url_key(name)}
        clusters = {
            cluster["spec"]["bootstrap"]["initdb"]["database"]: cluster_name
            for cluster_name, cluster in custom(base_resources, POSTGRES).items()
        }
        assert env[db_url_key(name)] == {"secretKeyRef": {"name": f"{clusters[name]}-app", "key": "uri"}}
    else:
        assert database_urls == set()


def test_every_referenced_config_map_and_secret_exists_or_is_generated(base_resources, manifests):
    workloads = [*manifests.of_kind(base_resources, "Deployment").values(), *manifests.of_kind(base_resources, "Job").values()]
    config_maps = {
        source["configMapRef"]["name"]
        for workload in workloads for source in container(workload).get("envFrom", [])
    }
    secrets = {
        value["secretKeyRef"]["name"]
        for workload in workloads for value in env_sources(workload).values()
        if isinstance(value, dict) and "secretKeyRef" in value
    }
    assert config_maps == set(manifests.of_kind(base_resources, "ConfigMap"))
    generated = {f"{name}-app" for name in custom(base_resources, POSTGRES)}
    # Created out of band (documented in config.yaml, rabbitmq.yaml and the README):
    # portal-secrets and each broker user's credentials, which its User imports.
    broker_users = {
        user["spec"]["importCredentialsSecret"]["name"]
        for user in custom(base_resources, ("rabbitmq.com/v1beta1", "User")).values()
    }
    assert secrets - broker_users == generated | {"portal-secrets"}


def test_every_setting_is_one_the_processes_read(base_resources, manifests, settings):
    # PORT is the entrypoint's; RABBITMQ_* only build AMQP_URI inside the manifest.
    own = {"PORT", "RABBITMQ_USERNAME", "RABBITMQ_PASSWORD"}
    config_maps = [*manifests.of_kind(base_resources, "ConfigMap").values()]
    config_maps += [patch for _, patch in manifests.overlay_patches(manifests.production) if patch["kind"] == "ConfigMap"]
    for config_map in config_maps:
        assert set(config_map["data"]) - settings == set()
    workloads = [*manifests.of_kind(base_resources, "Deployment").values(), *manifests.of_kind(base_resources, "Job").values()]
    for workload in workloads:
        assert set(env_sources(workload)) - settings - own == set(), workload["metadata"]["name"]


# -- Services and Ingresses

def test_every_service_selects_a_deployment_and_one_of_its_ports(base_resources, manifests):
    deployments = manifests.of_kind(base_resources, "Deployment")
    for name, service in manifests.of_kind(base_resources, "Service").items():
        target = deployments[name]
        assert service["spec"]["selector"].items() <= target["spec"]["template"]["metadata"]["labels"].items()
        port_names = {port["name"] for port in container(target)["ports"]}
        assert {port["targetPort"] for port in service["spec"]["ports"]} <= port_names


def ingress_backends(ingress):
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            yield rule["host"], path, path["backend"]["service"]


def test_every_ingress_reaches_an_existing_service_port(base_resources, manifests):
    services = manifests.of_kind(base_resources, "Service")
    for ingress in manifests.of_kind(base_resources, "Ingress").values():
        for _, _, backend in ingress_backends(ingress):
            assert backend["port"]["name"] in {port["name"] for port in services[backend["name"]]["spec"]["ports"]}


def billing_routes():
    source = (REPO_ROOT / "services" / "billing" / "service.py").read_text()
    return re.findall(r'@http\("[A-Z]+", "([^"]+)"', source)


def test_billing_is_public_only_on_its_card_form_and_callbacks(base_resources, manifests):
    paths = [path for _, path, _ in ingress_backends(manifests.of_kind(base_resources, "Ingress")["billing"])]

    def public(route):
        return any(
            route == path["path"] if path["pathType"] == "Exact"
            else route == path["path"] or route.startswith(path["path"].rstrip("/") + "/")
            for path in paths
        )

    routes = billing_routes()
    assert public("/card") and public("/static/card.css")
    assert any(route.startswith("/callbacks/") and public(route) for route in routes)
    assert not any(public(route) for route in routes if route in ("/healthz",) or route.startswith("/sandbox"))
    # Every public path leads to something billing serves.
    for path in paths:
        assert any(public(route) and route.startswith(path["path"]) for route in routes), path["path"]


def test_the_card_form_host_leaves_no_access_log_at_the_ingress(base_resources, manifests):
    # Its URLs carry the one-time card-entry ticket (billing's own log redacts it).
    billing = manifests.of_kind(base_resources, "Ingress")["billing"]
    assert billing["metadata"]["annotations"]["nginx.ingress.kubernetes.io/enable-access-log"] == "false"
    gateway = manifests.of_kind(base_resources, "Ingress")["gateway"]
    assert "nginx.ingress.kubernetes.io/enable-access-log" not in gateway["metadata"].get("annotations", {})


@pytest.mark.parametrize("directory", ["base", "production"])
def test_ingress_hosts_are_the_configured_public_urls(directory, manifests):
    folder = getattr(manifests, directory)
    documents = [document for path in folder.glob("*.yaml") if path.name != "kustomization.yaml"
                 for document in manifests.load_documents(path)]
    config = manifests.of_kind(documents, "ConfigMap")["portal-config"]["data"]
    ingresses = manifests.of_kind(documents, "Ingress")
    for ingress, url_key in (("gateway", "PORTAL_BASE_URL"), ("billing", "BILLING_PUBLIC_URL")):
        hosts = {host for host, _, _ in ingress_backends(ingresses[ingress])}
        assert hosts == {urlsplit(config[url_key]).hostname}
        for tls in ingresses[ingress]["spec"].get("tls", []):
            assert set(tls["hosts"]) == hosts
            assert urlsplit(config[url_key]).scheme == "https"


# -- the migrations Job

def test_migrations_run_as_a_job_with_every_services_database(base_resources, manifests):
    (job,) = manifests.of_kind(base_resources, "Job").values()
    main = container(job)
    assert main["image"] == IMAGE and main["args"] == ["migrate"]
    assert pod_spec(job)["restartPolicy"] == "Never"
    assert pod_spec(job)["securityContext"]["runAsUser"] == dockerfile_user_id()
    assert main["securityContext"]["readOnlyRootFilesystem"] is True
    assert set(env_sources(job)) == {db_url_key(service) for service in SERVICES_WITH_DATABASE}


# -- custom resources: the fields the portal relies on

def test_rabbitmq_is_a_three_node_cluster_with_quorum_queues_by_default(base_resources):
    (rabbitmq,) = custom(base_resources, RABBITMQ).values()
    spec = rabbitmq["spec"]
    assert spec["replicas"] == 3
    assert re.fullmatch(r"\d+[GM]i", spec["persistence"]["storage"])
    assert {"cpu", "memory"} <= set(spec["resources"]["requests"]) and "memory" in spec["resources"]["limits"]
    settings = dict(
        (key.strip(), value.strip())
        for key, value in (line.split("=", 1) for line in spec["rabbitmq"]["additionalConfig"].splitlines() if "=" in line)
    )
    assert settings["default_queue_type"] == "quorum"
    assert settings["cluster_partition_handling"] == "pause_minority"
    (spread,) = spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    assert spread["labelSelector"]["matchLabels"] == {"app.kubernetes.io/name": rabbitmq["metadata"]["name"]}


def test_postgresql_is_one_cloudnativepg_cluster_per_service(base_resources):
    clusters = custom(base_resources, POSTGRES)
    databases = sorted(cluster["spec"]["bootstrap"]["initdb"]["database"] for cluster in clusters.values())
    assert databases == sorted(SERVICES_WITH_DATABASE)
    for name, cluster in clusters.items():
        spec = cluster["spec"]
        assert spec["bootstrap"]["initdb"]["owner"] == spec["bootstrap"]["initdb"]["database"]
        assert name == f"portal-{spec['bootstrap']['initdb']['database']}-db"
        assert spec["instances"] >= 2, "a replica to fail over to"
        assert re.fullmatch(r"\d+[GM]i", spec["storage"]["size"])
        assert "memory" in spec["resources"]["limits"]


# -- the production overlay

def matching_base_resources(entry, patch, base_resources):
    target = entry.get("target")
    if target is None:
        return [
            resource for resource in base_resources
            if kind_of(resource) == kind_of(patch) and resource["metadata"]["name"] == patch["metadata"]["name"]
        ]
    assert target["kind"] == patch["kind"]
    return [
        resource for resource in base_resources
        if resource["kind"] == target["kind"]
        and ("group" not in target or resource["apiVersion"].split("/")[0] == target["group"])
        and ("name" not in target or resource["metadata"]["name"] == target["name"])
    ]


def test_production_patch_changes_resources_the_base_declares(production_patch, base_resources):
    entry, patch = production_patch
    assert matching_base_resources(entry, patch, base_resources)


def test_production_patch_sets_only_fields_that_exist(production_patch, base_resources, manifests):
    entry, patch = production_patch
    if kind_of(patch) in CUSTOM_RESOURCES:
        # No schema: every field the patch sets must be one the base already sets.
        for resource in matching_base_resources(entry, patch, base_resources):
            for path in leaf_paths(patch["spec"]):
                assert has_path(resource["spec"], path), ".".join(path)
    else:
        assert validate_partial(patch, manifests.kubernetes_version) == []


def test_the_partial_validation_still_rejects_unknown_fields(manifests):
    patch = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
             "metadata": {"name": "x"}, "spec": {"minReplica": 3}}
    assert validate_partial(patch, manifests.kubernetes_version) != []


def test_production_uses_a_released_image_in_its_own_namespace(manifests):
    overlay = manifests.kustomization(manifests.production)
    assert overlay["resources"] == ["../../base"]
    assert overlay["namespace"]
    (image,) = overlay["images"]
    assert image["name"] == IMAGE
    assert image["newTag"] not in ("", "latest", "dev")


def test_production_runs_more_replicas_with_larger_limits(manifests, deployments):
    patches = {patch["kind"]: patch for _, patch in manifests.overlay_patches(manifests.production)}
    autoscaling = patches["HorizontalPodAutoscaler"]["spec"]
    assert 3 <= autoscaling["minReplicas"] <= autoscaling["maxReplicas"]
    (limits,) = [main["resources"]["limits"] for main in pod_spec(patches["Deployment"])["containers"]]
    for deployment in deployments.values():
        assert memory_mebibytes(limits["memory"]) > memory_mebibytes(container(deployment)["resources"]["limits"]["memory"])


def memory_mebibytes(quantity):
    number, unit = re.fullmatch(r"(\d+)([GM]i)", quantity).groups()
    return int(number) * (1024 if unit == "Gi" else 1)


def test_no_kubernetes_manifest_uses_the_development_mail_sink(manifests):
    for path in [*manifests.base.glob("*.yaml"), *manifests.production.glob("*.yaml")]:
        for document in manifests.load_documents(path):
            for line in str(document).lower().splitlines():
                assert "mailsink" not in line and "devtools" not in line, path
            if document.get("kind") == "ConfigMap" and "SMTP_HOST" in document["data"]:
                assert document["data"]["SMTP_HOST"] not in ("localhost", "127.0.0.1", "mailsink"), path
