"""What the deploy/ tests share: the manifests as loaded YAML and the services the code
defines. Nothing here needs a Docker engine, a cluster or the network."""
import ast
import re
from types import SimpleNamespace

import pytest
import yaml

from services.common.config import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"
BASE = DEPLOY / "k8s" / "base"
PRODUCTION = DEPLOY / "k8s" / "overlays" / "production"
# A release Kubernetes still supports and kubernetes-validate ships schemas for.
KUBERNETES_VERSION = "1.31"


def load_documents(path):
    with path.open() as handle:
        return [document for document in yaml.safe_load_all(handle) if document]


def kustomization(directory):
    return load_documents(directory / "kustomization.yaml")[0]


def kustomize_resources(directory):
    """The resources a kustomization lists (its own files only: `../` bases are skipped)."""
    resources = []
    for entry in kustomization(directory)["resources"]:
        path = directory / entry
        if path.is_file():
            for document in load_documents(path):
                resources.append((path.relative_to(REPO_ROOT), document))
    return resources


def name_of(resource):
    return resource["metadata"]["name"]


def of_kind(resources, kind):
    return {name_of(resource): resource for resource in resources if resource["kind"] == kind}


def service_classes():
    """{service name: "module:Class"} for every nameko service class in the code: the
    classes in services/*/service.py and gateway/service.py with a `name` attribute."""
    found = {}
    for path in [*sorted(REPO_ROOT.glob("services/*/service.py")), REPO_ROOT / "gateway" / "service.py"]:
        module = ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts)
        for node in ast.parse(path.read_text()).body:
            if not isinstance(node, ast.ClassDef):
                continue
            for statement in node.body:
                if (
                    isinstance(statement, ast.Assign)
                    and [getattr(target, "id", None) for target in statement.targets] == ["name"]
                    and isinstance(statement.value, ast.Constant)
                ):
                    found[statement.value.value] = f"{module}:{node.name}"
    return found


def config_variables():
    """The environment variables config.yaml reads (`${NAME:default}`)."""
    return set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)[:}]", (REPO_ROOT / "config.yaml").read_text()))


def procfile_commands():
    """{process: command} from the Procfile, without leading VAR=value assignments."""
    commands = {}
    for line in (REPO_ROOT / "Procfile").read_text().splitlines():
        if ":" in line and not line.startswith("#"):
            process, command = line.split(":", 1)
            commands[process.strip()] = re.sub(r"^(\s*[A-Z_]+=\S+)+\s*", "", command.strip())
    return commands


def overlay_patches(directory):
    """[(patch entry of the kustomization, patch document)] for every patch it lists."""
    patches = []
    for entry in kustomization(directory).get("patches", []):
        for document in load_documents(directory / entry["path"]):
            patches.append((entry, document))
    return patches


def pytest_generate_tests(metafunc):
    """One test per manifest document, named after its file, kind and name."""
    base = kustomize_resources(BASE)
    sources = {
        "deployment": [(resource, name_of(resource)) for _, resource in base if resource["kind"] == "Deployment"],
        "base_resource": [(resource, f"{path}:{resource['kind']}/{name_of(resource)}")
                          for path, resource in base],
        "production_patch": [((entry, patch), f"{entry['path']}:{patch['kind']}")
                             for entry, patch in overlay_patches(PRODUCTION)],
    }
    for fixture, cases in sources.items():
        if fixture in metafunc.fixturenames:
            metafunc.parametrize(fixture, [case for case, _ in cases], ids=[label for _, label in cases])


@pytest.fixture(scope="session")
def manifests():
    """The loaders above, for tests (a conftest is not importable under importlib mode)."""
    return SimpleNamespace(
        base=BASE, production=PRODUCTION, kubernetes_version=KUBERNETES_VERSION,
        load_documents=load_documents, kustomization=kustomization, overlay_patches=overlay_patches,
        of_kind=of_kind,
    )


@pytest.fixture(scope="session")
def base_resources():
    return [resource for _, resource in kustomize_resources(BASE)]


@pytest.fixture(scope="session")
def deployments(base_resources):
    return of_kind(base_resources, "Deployment")


@pytest.fixture(scope="session")
def services_in_code():
    return service_classes()


@pytest.fixture(scope="session")
def settings():
    return config_variables()


@pytest.fixture(scope="session")
def procfile():
    return procfile_commands()


@pytest.fixture(scope="session")
def compose():
    return load_documents(DEPLOY / "compose.yaml")[0]
