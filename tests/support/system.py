"""The whole portal started exactly as `make run` starts it (devtools.run), but on
free ports, in its own RabbitMQ vhost and its own folder, so it never collides with
a developer's `make run` or another test run."""
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import requests

from devtools.lifetime import terminate_with_parent
from services.billing.credentials import new_key
from services.common.config import REPO_ROOT
from services.common.migrations import SERVICES_WITH_DATABASE, db_url_key
from support.databases import create_postgres_database, drop_postgres_databases
from support.ports import free_port

MANAGEMENT_API = os.environ.get("PORTAL_TEST_RABBIT_API", "http://localhost:15672/api")
BROKER = os.environ.get("PORTAL_TEST_BROKER", "amqp://guest:guest@localhost:5672")
READY_MARKER = "Demo buyers:"


def running(pid):
    """Alive and not a zombie (a container's init may be slow to reap exited children)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in status


class RunningSystem:
    def __init__(self, folder, database_backend="sqlite", rpc_timeout=2, extra_env=None, amqp_uri=None):
        self.folder = Path(folder)
        self.database_backend = database_backend
        self.rpc_timeout = rpc_timeout
        self.extra_env = extra_env or {}
        # A broker of the test's own (`amqp_uri`) is used as it is; on the shared one
        # the system gets a vhost of its own.
        self.vhost = None if amqp_uri else f"portal_e2e_{uuid.uuid4().hex[:10]}"
        self.amqp_uri = amqp_uri or f"{BROKER}/{self.vhost}"
        self.gateway_port = free_port()
        self.mail_port = free_port()
        self.billing_port = free_port()
        self.fake_asaas_port = free_port()
        self.fake_mercadopago_port = free_port()
        self.databases = []
        self.database_urls = {}
        self.process = None
        self.env = None
        self.log_path = self.folder / "system.log"

    @property
    def gateway_url(self):
        return f"http://localhost:{self.gateway_port}"

    @property
    def mail_url(self):
        return f"http://127.0.0.1:{self.mail_port}"

    def _database_url(self, service):
        if self.database_backend == "sqlite":
            return f"sqlite:///{self.folder}/{service}.db"
        name, url = create_postgres_database(f"portal_e2e_{service}")
        self.databases.append(name)
        return url

    def environment(self):
        env = dict(os.environ)
        env.update({
            "AMQP_URI": self.amqp_uri,
            "GATEWAY_PORT": str(self.gateway_port),
            "PORTAL_BASE_URL": self.gateway_url,
            "BILLING_PORT": str(self.billing_port),
            "BILLING_PUBLIC_URL": f"http://localhost:{self.billing_port}",
            "MAIL_SINK_PORT": str(self.mail_port),
            "MAIL_DIR": str(self.folder / "mail"),
            "RPC_TIMEOUT": str(self.rpc_timeout),
            "STATUS_TIMEOUT": "1",
            "OUTBOX_POLL_INTERVAL": "0.2",
        })
        for service in SERVICES_WITH_DATABASE:
            self.database_urls[service] = env[db_url_key(service)] = self._database_url(service)
        # The suite logs the same demo buyers in, from one address, many times; tests of
        # the login rate limits start a system of their own with the defaults.
        env["LOGIN_RATE_LIMIT_PER_EMAIL"] = "1000"
        env["LOGIN_RATE_LIMIT_PER_ADDRESS"] = "10000"
        # The development sink runs, as in `make run`, on a port of its own.
        env.pop("SMTP_HOST", None)
        env["SMTP_PORT"] = str(free_port())
        # A key of its own: the system's databases are its own too.
        env["BILLING_CREDENTIAL_KEYS"] = new_key()
        env["FAKE_ASAAS_PORT"] = str(self.fake_asaas_port)
        env["FAKE_MERCADOPAGO_PORT"] = str(self.fake_mercadopago_port)
        # The fakes `make run` starts (a fleet starts none: nothing there answers).
        env["ASAAS_SANDBOX_URL"] = env["ASAAS_PRODUCTION_URL"] = f"http://127.0.0.1:{self.fake_asaas_port}/v3"
        env["MERCADOPAGO_API_URL"] = f"http://127.0.0.1:{self.fake_mercadopago_port}"
        env.update(self.extra_env)
        return env

    def start(self, timeout=180):
        self._create_vhost()
        self.folder.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        # Kept, so that more processes can join this system (the benchmarks add replicas).
        self.env = self.environment()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "devtools.run"], cwd=REPO_ROOT, env=self.env,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=terminate_with_parent,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the system exited during start-up:\n{self.log()}")
            if READY_MARKER in self.log():
                return self
            time.sleep(0.5)
        raise RuntimeError(f"the system was not ready in {timeout}s:\n{self.log()}")

    def _create_vhost(self):
        if self.vhost is None:
            return
        requests.put(f"{MANAGEMENT_API}/vhosts/{self.vhost}", auth=("guest", "guest"), timeout=10).raise_for_status()
        requests.put(
            f"{MANAGEMENT_API}/permissions/{self.vhost}/guest", auth=("guest", "guest"), timeout=10,
            json={"configure": ".*", "write": ".*", "read": ".*"},
        ).raise_for_status()

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def descendants(self):
        """Pids of every live process started, directly or not, by this system."""
        parents = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    status = (entry / "status").read_text()
                except OSError:
                    continue
                parent = next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:"))
                parents[int(entry.name)] = int(parent)
        found, frontier = set(), {self.process.pid}
        while frontier:
            children = {pid for pid, parent in parents.items() if parent in frontier} - found
            found |= children
            frontier = children
        return found

    def pids_of(self, module):
        """Pids of this system's processes running `module` (e.g. services.billing.service)."""
        found = []
        for pid in sorted(self.descendants()):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            # The python process itself, not the shell honcho starts it from.
            interpreter = Path(cmdline[0].decode(errors="replace")).name
            if interpreter.startswith("python") and any(part.startswith(module.encode()) for part in cmdline):
                found.append(pid)
        return found

    def pid_of(self, module):
        pids = self.pids_of(module)
        if not pids:
            raise LookupError(f"no process runs {module}")
        return pids[0]

    def stop(self):
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)  # what Ctrl-C does
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self.vhost is not None:
            requests.delete(f"{MANAGEMENT_API}/vhosts/{self.vhost}", auth=("guest", "guest"), timeout=10)
        drop_postgres_databases(self.databases)
