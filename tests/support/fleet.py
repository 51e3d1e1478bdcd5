"""The portal's processes started one by one, so a fault test can kill, stop or start
any single one of them: `make run` starts them under honcho, which ends them all as
soon as one ends.

Each process runs its Procfile command, on its own PostgreSQL databases (created
and dropped here), the broker the test gives, the development mail sink and a shared
controlled clock. `Fleet` is a `RunningSystem`, so the e2e client helpers
(`support.portal_client`) drive it the same way.
"""
import os
import shlex
import signal
import string
import subprocess
import sys
import time
from contextlib import ExitStack

import requests
from kombu import Connection

from devtools.lifetime import terminate_with_parent
from services.common import clock, migrations
from services.common.config import REPO_ROOT
from support.mailsink import running_mailsink
from support.system import RunningSystem

PROCESS_NAMES = ("auth", "subscriptions", "billing", "notifications", "gateway")
PROGRAMS = {"nameko": [sys.executable, "-m", "nameko"], "python": [sys.executable]}
LISTEN = "0A"  # the state of a listening socket in /proc/net/tcp


def procfile_commands():
    commands = {}
    for line in (REPO_ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, command = line.split(":", 1)
            commands[name.strip()] = command.strip()
    return commands


def start_procfile_process(name, env, output):
    """The Procfile's process `name` with `env` (its `$VARIABLES` substituted, its
    leading `VAR=value` assignments applied), stdout and stderr to `output`."""
    words = shlex.split(string.Template(procfile_commands()[name]).substitute(env))
    assignments = {}
    while "=" in words[0]:
        key, value = words.pop(0).split("=", 1)
        assignments[key] = value
    return subprocess.Popen(
        PROGRAMS[words[0]] + words[1:], cwd=REPO_ROOT, env={**env, **assignments},
        stdout=output, stderr=subprocess.STDOUT, preexec_fn=terminate_with_parent,
    )


class Fleet(RunningSystem):
    def __init__(self, folder, amqp_uri, replicas=None, rpc_timeout=2, extra_env=None):
        super().__init__(folder, database_backend="postgresql", rpc_timeout=rpc_timeout,
                         extra_env=extra_env, amqp_uri=amqp_uri)
        self.replicas = {name: 1 for name in PROCESS_NAMES} | (replicas or {})
        self.processes = {name: [] for name in PROCESS_NAMES}
        self.clock_file = self.folder / "clock.json"
        self.env = None
        self.sink = None
        self._stack = ExitStack()
        self._started = 0
        self._ended = set()

    def start(self, timeout=120):
        self.folder.mkdir(parents=True, exist_ok=True)
        clock.write_clock_file(self.clock_file, offset_seconds=0)
        self.env = {**self.environment(), "PYTHONUNBUFFERED": "1", "CLOCK_FILE": str(self.clock_file)}
        for service in migrations.SERVICES_WITH_DATABASE:
            migrations.upgrade(service, self.database_urls[service])
        self.sink = self._stack.enter_context(
            running_mailsink(self.folder / "mail", int(self.env["SMTP_PORT"]), self.mail_port))
        for name in PROCESS_NAMES:
            for _ in range(self.replicas[name]):
                self.start_process(name)
        self.wait_until_serving(timeout)
        return self

    def start_process(self, name, **overrides):
        """One more process of `name`, as the Procfile starts it (`overrides`: its own
        settings, e.g. another AMQP_URI)."""
        self._started += 1
        log_path = self.folder / f"{self._started:02d}-{name}.log"
        with log_path.open("ab") as log:
            process = start_procfile_process(name, {**self.env, **overrides}, log)
        process.log_path = log_path
        self.processes[name].append(process)
        return process

    def running(self, name):
        return [process for process in self.processes[name] if process.poll() is None]

    def end(self, process, how=signal.SIGTERM, timeout=60):
        """Send `how` to one process and wait for it to exit; its exit code."""
        self._ended.add(process.pid)
        process.send_signal(how)
        return process.wait(timeout=timeout)

    def log(self):
        return "\n".join(path.read_text(errors="replace") for path in sorted(self.folder.glob("*.log")))

    def consumers(self, service):
        """How many processes consume `service`'s RPC queue, as the broker sees it."""
        with Connection(self.amqp_uri, connect_timeout=5) as connection:
            _, _, consumers = connection.default_channel.queue_declare(f"rpc-{service}", passive=True)
            return consumers

    def gateway_listeners(self):
        port = f"{self.gateway_port:04X}"
        with open("/proc/net/tcp") as table:
            rows = [line.split() for line in table.readlines()[1:]]
        return sum(1 for row in rows if row[1].endswith(f":{port}") and row[3] == LISTEN)

    def serving(self):
        """Every process of the fleet is up and taking work, and /status says so."""
        try:
            if requests.get(f"{self.gateway_url}/status", timeout=5).status_code != 200:
                return False
            return all(self.consumers(service) == len(self.running(service))
                       for service in migrations.SERVICES_WITH_DATABASE) and \
                self.gateway_listeners() == len(self.running("gateway"))
        except (requests.RequestException, OSError):
            return False

    def wait_until_serving(self, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            exited = [name for name, processes in self.processes.items()
                      if any(process.poll() is not None and process.pid not in self._ended
                             for process in processes)]
            if exited:
                raise RuntimeError(f"{', '.join(exited)} exited:\n{self.log()[-4000:]}")
            if self.serving():
                return
            time.sleep(0.5)
        raise RuntimeError(f"the fleet was not serving in {timeout}s:\n{self.log()[-4000:]}")

    def move_clock(self, offset_seconds):
        clock.write_clock_file(self.clock_file, offset_seconds=offset_seconds)

    def stop(self):
        everyone = [process for processes in self.processes.values() for process in processes]
        for process in everyone:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in everyone:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
        self._stack.close()
        super().stop()
