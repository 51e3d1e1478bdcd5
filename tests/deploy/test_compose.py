"""deploy/compose.yaml read with PyYAML (merge keys resolved): wiring and health."""
import re
import subprocess
from urllib.parse import urlsplit

from services.common.config import REPO_ROOT
from services.common.migrations import SERVICES_WITH_DATABASE, db_url_key

DEPLOY = REPO_ROOT / "deploy"
INFRASTRUCTURE = {"rabbitmq", "postgres"}


def portal_processes(compose):
    """Services built from the portal image, by the role they run."""
    return {name: service for name, service in compose["services"].items() if "build" in service}


def test_every_long_running_service_has_a_healthcheck(compose):
    for name, service in compose["services"].items():
        if name != "migrate":
            assert service["healthcheck"]["test"][0] == "CMD", name


def test_every_portal_process_runs_its_own_role_from_the_one_image(compose):
    images = set()
    for name, service in portal_processes(compose).items():
        assert service["command"] == [name]
        assert service["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
        assert service["read_only"] is True
        images.add(service["image"])
    assert len(images) == 1
    roles = set(re.findall(r"^    ([a-z]+)\)$", (DEPLOY / "entrypoint.sh").read_text(), re.MULTILINE))
    assert set(portal_processes(compose)) <= roles


def test_services_with_a_database_start_after_the_migrations_and_the_broker(compose):
    assert compose["services"]["migrate"]["restart"] == "no"
    for service in SERVICES_WITH_DATABASE:
        depends_on = compose["services"][service]["depends_on"]
        assert depends_on["migrate"] == {"condition": "service_completed_successfully"}
        assert depends_on["rabbitmq"] == {"condition": "service_healthy"}
    for name, service in compose["services"].items():
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in compose["services"], (name, dependency)
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in compose["services"][dependency], dependency


def test_every_database_url_points_at_the_services_own_database_on_the_postgres_service(compose):
    migrate_env = compose["services"]["migrate"]["environment"]
    assert set(migrate_env) == {db_url_key(service) for service in SERVICES_WITH_DATABASE}
    for name, service in compose["services"].items():
        for key, url in service.get("environment", {}).items():
            if key.endswith("_DB_URL"):
                owner = key.removesuffix("_DB_URL").lower()
                parts = urlsplit(url)
                assert (parts.scheme, parts.hostname, parts.username, parts.path) == (
                    "postgresql", "postgres", owner, f"/{owner}",
                ), (name, key)
                assert name in ("migrate", owner), f"{name} must not get {key}"
    for service in SERVICES_WITH_DATABASE:
        assert db_url_key(service) in compose["services"][service]["environment"]


def test_every_portal_process_reaches_the_broker_service_and_mail_goes_to_the_sink(compose):
    for name, service in portal_processes(compose).items():
        if name not in ("migrate", "mailsink"):
            environment = service["environment"]
            assert urlsplit(environment["AMQP_URI"]).hostname == "rabbitmq"
            assert {"PORTAL_BASE_URL", "BILLING_PUBLIC_URL", "METRICS_PORT"} <= set(environment)
    notifications = compose["services"]["notifications"]["environment"]
    sink = compose["services"]["mailsink"]["environment"]
    assert (notifications["SMTP_HOST"], notifications["SMTP_PORT"]) == ("mailsink", sink["SMTP_PORT"])


def test_every_setting_of_a_portal_process_is_one_it_reads(compose, settings):
    for name, service in portal_processes(compose).items():
        assert set(service["environment"]) - settings - {"PORT"} == set(), name


def test_the_public_ports_are_published_on_loopback_only(compose):
    published = {
        name: [port.rsplit(":", 1)[0] for port in service.get("ports", [])]
        for name, service in compose["services"].items()
    }
    assert published["gateway"] == ["127.0.0.1:8000"]
    assert published["billing"] == ["127.0.0.1:8001"]
    assert published["mailsink"] == ["127.0.0.1:8025"]
    assert all(port.startswith("127.0.0.1:") for ports in published.values() for port in ports)


def test_mounted_files_exist_and_the_database_script_creates_every_services_database(compose):
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (DEPLOY / source).is_file(), source
    script = DEPLOY / "compose" / "postgres-init.sh"
    listed = re.search(r"^for service in ([a-z ]+); do$", script.read_text(), re.MULTILINE).group(1).split()
    assert listed == list(SERVICES_WITH_DATABASE)
    subprocess.run(["bash", "-n", str(script)], check=True)


def test_the_broker_makes_quorum_queues_the_default(compose):
    config = (DEPLOY / "compose" / "rabbitmq.conf").read_text()
    assert re.search(r"^default_queue_type = quorum$", config, re.MULTILINE)
    assert any(volume.endswith("/etc/rabbitmq/conf.d/90-portal.conf:ro")
               for volume in compose["services"]["rabbitmq"]["volumes"])
