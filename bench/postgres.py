"""A PostgreSQL server of the bench's own, in a temporary folder on a free port.

The machine's shared server has a connection limit that parallel test runs already
fill; a private one keeps the benchmark from failing for want of connections, and
keeps their load out of its numbers. BENCH_POSTGRES_URL=<admin URL> uses an existing
server instead (the databases are still created with unique names and dropped).
"""
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg2

MAX_CONNECTIONS = 300


def _binaries():
    """PostgreSQL's server programs: where pg_config says, else Debian's layout."""
    if shutil.which("pg_config"):
        return Path(subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True).stdout.strip())
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        raise SystemExit("make bench needs the PostgreSQL server programs (initdb, pg_ctl), "
                         "or BENCH_POSTGRES_URL=<admin URL> of a running server")
    return found[-1].parent


def _as_owner(command, owner):
    # PostgreSQL refuses to run as root: as root, run it as the `postgres` user.
    return ["runuser", "-u", owner, "--", *command] if owner else command


class PrivatePostgres:
    def __init__(self, port):
        self.port = port
        self.folder = Path(tempfile.mkdtemp(prefix="portal-bench-pg-"))
        self.data = self.folder / "data"
        self.owner = "postgres" if os.geteuid() == 0 else None
        self.admin_url = f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def start(self, timeout=60):
        bindir = _binaries()
        if self.owner:
            shutil.chown(self.folder, self.owner)
        subprocess.run(_as_owner([str(bindir / "initdb"), "-D", str(self.data), "-U", "postgres",
                                  "--auth=trust", "--no-sync"], self.owner),
                       check=True, capture_output=True)
        subprocess.run(_as_owner([
            str(bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.folder / "server.log"), "-w", "start",
            "-o", f"-c listen_addresses=127.0.0.1 -c port={self.port} -c max_connections={MAX_CONNECTIONS} "
                  f"-c unix_socket_directories={self.folder}",
        ], self.owner), check=True, capture_output=True, timeout=timeout)
        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg2.connect(self.admin_url).close()
                return self
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    @property
    def pid(self):
        """The server's main process (its backends are its children)."""
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def stop(self):
        subprocess.run(_as_owner([str(_binaries() / "pg_ctl"), "-D", str(self.data), "-m", "fast", "stop"],
                                 self.owner), capture_output=True, timeout=60)
        shutil.rmtree(self.folder, ignore_errors=True)
