"""Inventory both ways: every service the code defines is deployed everywhere a service
is deployed, and everything deployed as a service is one the code defines."""
import re

from services.common.config import REPO_ROOT

ENTRYPOINT = REPO_ROOT / "deploy" / "entrypoint.sh"
# Compose's own infrastructure and one-shot/dev processes: not services of the code.
COMPOSE_SUPPORT = {"rabbitmq", "postgres", "migrate", "mailsink"}


def test_the_inventory_finds_the_services_and_the_gateway(services_in_code):
    assert {"gateway", "auth", "billing"} <= set(services_in_code)
    assert services_in_code["gateway"] == "gateway.service:GatewayService"


def test_every_service_in_the_code_has_a_deployment(services_in_code, deployments):
    assert set(services_in_code) - set(deployments) == set()


def test_every_deployment_is_a_service_in_the_code(services_in_code, deployments):
    assert set(deployments) - set(services_in_code) == set()


def test_every_service_in_the_code_runs_in_compose_and_nothing_else_does(services_in_code, compose):
    assert set(compose["services"]) - COMPOSE_SUPPORT == set(services_in_code)


def test_every_service_in_the_code_is_an_entrypoint_role_and_the_procfile_agrees(services_in_code, procfile):
    roles = set(re.findall(r"^    ([a-z]+)\)$", ENTRYPOINT.read_text(), re.MULTILINE))
    assert set(services_in_code) <= roles
    # `make run`'s development tools: the mail sink and the fake Asaas.
    assert set(procfile) - {"mailsink", "fakeasaas", "fakemercadopago"} == set(services_in_code)
    for service, target in services_in_code.items():
        assert procfile[service] == f"nameko run --config config.yaml {target}"
