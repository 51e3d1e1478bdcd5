"""Production mode and the deploy files: the Kubernetes production overlay runs every
process with PORTAL_ENV=production and settings it accepts; compose is for trials by
default, and production mode refuses every secret it (or config.yaml) ships."""
import re

import pytest
import yaml

from services.common.config import REPO_ROOT, load_config
from services.common.production import SHIPPED_SECRETS, in_production, production_refusals

# `${NAME:default}` (config.yaml) and `${NAME:-default}` (compose) of a password or secret.
SHIPPED_DEFAULT = re.compile(r"\$\{(\w*(?:PASSWORD|SECRET)\w*):-?([^}]*)\}")
COMPOSE_VARIABLE = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")
# What a Deployment gets from a Secret: values the operators or the operator generate.
FROM_A_SECRET = "value-from-a-kubernetes-secret"


def overlay_config(base_resources, manifests):
    (patch,) = [patch for _, patch in manifests.overlay_patches(manifests.production) if patch["kind"] == "ConfigMap"]
    return manifests.of_kind(base_resources, "ConfigMap")["portal-config"]["data"] | patch["data"]


def deployment_environment(deployment, config_map):
    (main,) = deployment["spec"]["template"]["spec"]["containers"]
    env = dict(config_map)
    for item in main.get("env", []):
        env[item["name"]] = item.get("value", FROM_A_SECRET)
    return env


def config_under(environment, monkeypatch, settings):
    """config.yaml as a process with exactly `environment` reads it."""
    for name in settings:
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return load_config()


def test_every_deployment_of_the_production_overlay_runs_in_production_mode_and_starts(
        deployment, base_resources, manifests, monkeypatch, settings):
    env = deployment_environment(deployment, overlay_config(base_resources, manifests))
    config = config_under(env, monkeypatch, settings)
    assert in_production(config)
    secrets = [name for name, value in env.items() if value == FROM_A_SECRET and name in settings]
    assert production_refusals(config, environ=env, secret_settings=secrets,
                               url_settings=[name for name in secrets if name.endswith("_DB_URL")]) == []


def test_every_shipped_password_and_secret_is_one_production_mode_knows():
    shipped = {}
    for path in (REPO_ROOT / "config.yaml", REPO_ROOT / "deploy" / "compose.yaml"):
        for name, default in SHIPPED_DEFAULT.findall(path.read_text()):
            shipped[f"{path.name}: {name}"] = default
    assert shipped and {where: default for where, default in shipped.items() if default not in SHIPPED_SECRETS} == {}


class ComposeLoader(yaml.SafeLoader):
    """PyYAML without nameko's `${VAR:default}` resolution (the `compose` fixture has
    it), so `${VAR:-default}` stays for compose_environment to resolve as compose does."""


ComposeLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != "!env_var"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@pytest.fixture(scope="module")
def raw_compose():
    return yaml.load((REPO_ROOT / "deploy" / "compose.yaml").read_text(), Loader=ComposeLoader)


def compose_environment(raw, **environment):
    """A compose environment as `docker compose` resolves it with `environment` set."""
    def resolve(value):
        return COMPOSE_VARIABLE.sub(lambda match: environment.get(match[1], match[2] or ""), str(value))

    return {name: resolve(value) for name, value in raw.items()}


@pytest.mark.parametrize("name", ["auth", "subscriptions", "billing", "notifications", "gateway"])
def test_compose_is_for_trials_unless_told_and_production_refuses_each_of_its_defaults(
        name, raw_compose, monkeypatch, settings):
    raw = raw_compose["services"][name]["environment"]
    assert raw["PORTAL_ENV"] == "${PORTAL_ENV:-development}"
    assert not in_production(config_under(compose_environment(raw), monkeypatch, settings))

    env = compose_environment(raw, PORTAL_ENV="production", PORTAL_BASE_URL="https://portal.example.com",
                              BILLING_PUBLIC_URL="https://pagamento.example.com")
    config = config_under(env, monkeypatch, settings)
    refused = production_refusals(
        config, environ=env, secret_settings=[key for key in env if "SECRET" in key],
        url_settings=[key for key in env if key.endswith("_DB_URL")])
    with_a_shipped_default = {key for key, value in raw.items() if SHIPPED_DEFAULT.search(str(value))}
    assert with_a_shipped_default
    assert {refusal.split()[0] for refusal in refused} == with_a_shipped_default

