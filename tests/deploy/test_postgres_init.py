"""deploy/compose/postgres-init.sh against a throwaway PostgreSQL cluster of its own
(own data directory and socket, no TCP), as the postgres image runs it on first start."""
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from services.common.config import REPO_ROOT
from services.common.migrations import SERVICES_WITH_DATABASE

SCRIPT = REPO_ROOT / "deploy" / "compose" / "postgres-init.sh"
SERVER_BINARIES = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda path: int(path.parent.name))


@pytest.fixture
def postgres_cluster():
    if not SERVER_BINARIES:
        pytest.skip("PostgreSQL server binaries are not installed")
    binaries = SERVER_BINARIES[-1]
    # PostgreSQL refuses to run as root: root runs it as the postgres user, in a folder
    # of its own (pytest's tmp_path sits under folders only root may enter).
    as_server_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    folder = Path(tempfile.mkdtemp(prefix="portal-pg-"))
    data, sockets = folder / "data", folder / "sockets"
    sockets.mkdir()
    if as_server_user:
        shutil.chown(folder, "postgres")
        shutil.chown(sockets, "postgres")
    port = "5432"  # names the socket file only: the server listens on no TCP port

    def server(*command):
        subprocess.run([*as_server_user, *command], check=True, capture_output=True, timeout=120)

    pg_ctl = [str(binaries / "pg_ctl"), "-D", str(data)]
    try:
        server(str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust")
        server(*pg_ctl, "-w", "-l", str(folder / "server.log"),
               "-o", f"-p {port} -k {sockets} -c listen_addresses=''", "start")
        yield {"PGHOST": str(sockets), "PGPORT": port, "POSTGRES_USER": "postgres"}
    finally:
        if (data / "postmaster.pid").exists():
            server(*pg_ctl, "-m", "immediate", "stop")
        shutil.rmtree(folder)


def query(cluster, sql):
    finished = subprocess.run(
        ["psql", "-U", "postgres", "-d", "postgres", "-At", "-c", sql],
        env={**os.environ, **cluster}, capture_output=True, text=True, check=True,
    )
    return finished.stdout.split()


def test_each_service_gets_its_own_role_and_database_closed_to_the_others(postgres_cluster):
    subprocess.run(
        ["bash", str(SCRIPT)], env={**os.environ, **postgres_cluster, "BILLING_DB_PASSWORD": "s3cret'x"},
        check=True, capture_output=True, timeout=60,
    )
    owners = query(postgres_cluster, "SELECT datname || '=' || pg_get_userbyid(datdba) FROM pg_database")
    assert {f"{service}={service}" for service in SERVICES_WITH_DATABASE} <= set(owners)
    names = ", ".join(f"'{service}'" for service in SERVICES_WITH_DATABASE)
    may_connect = query(postgres_cluster, (
        "SELECT rolname || '>' || datname FROM pg_roles, pg_database "
        f"WHERE rolname IN ({names}) AND datname IN ({names}) "
        "AND has_database_privilege(rolname, datname, 'CONNECT')"
    ))
    assert sorted(may_connect) == sorted(f"{service}>{service}" for service in SERVICES_WITH_DATABASE)
    assert query(postgres_cluster, "SELECT count(*) FROM pg_authid WHERE rolname = 'billing' AND rolpassword IS NOT NULL") == ["1"]
