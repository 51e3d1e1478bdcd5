"""A RabbitMQ node of the test run's own: its own node name, AMQP and distribution
ports, data and log folders, no plugins, and its own HOME (so its own Erlang cookie).
A test may stop, restart or kill it; the machine's shared broker, which other test
runs use, is never touched.

    with private_rabbit_node(tmp_path / "rabbit") as node:
        node.amqp_uri      # amqp://guest:guest@127.0.0.1:<port>/
        node.restart()     # the same data folder: durable queues and their messages stay
"""
import os
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from devtools.lifetime import terminate_with_parent
from support.ports import free_ports

# The server script itself: the Debian wrapper in /usr/sbin switches to the rabbitmq
# user, whose HOME and cookie belong to the machine's node.
SERVER_SCRIPTS = ("/usr/lib/rabbitmq/bin/rabbitmq-server", "/usr/local/sbin/rabbitmq-server")
START_TIMEOUT_SECONDS = 90
STOP_TIMEOUT_SECONDS = 60


def server_script():
    return next((path for path in SERVER_SCRIPTS if Path(path).exists()), "rabbitmq-server")


class RabbitNode:
    def __init__(self, folder):
        self.folder = Path(folder)
        self.name = f"faults-{uuid.uuid4().hex[:8]}@localhost"
        self.port, self.dist_port = free_ports(2)
        self.process = None
        self.starts = 0

    @property
    def amqp_uri(self):
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def environment(self):
        self.folder.mkdir(parents=True, exist_ok=True)
        empty_env_file = self.folder / "rabbitmq-env.conf"
        empty_env_file.write_text("")  # not /etc/rabbitmq's, which names the shared node
        config_file = self.folder / "rabbitmq.conf"
        config_file.write_text(f"listeners.tcp.1 = 127.0.0.1:{self.port}\n")
        plugins_file = self.folder / "enabled_plugins"
        plugins_file.write_text("[].\n")
        return {
            **os.environ,
            "HOME": str(self.folder),
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONF_ENV_FILE": str(empty_env_file),
            "RABBITMQ_CONFIG_FILE": str(config_file),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(plugins_file),
            "RABBITMQ_MNESIA_BASE": str(self.folder / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.folder / "log"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    def log(self):
        path = self.folder / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self):
        env = self.environment()
        with (self.folder / "server.log").open("ab") as log:
            self.process = subprocess.Popen(
                [server_script()], env=env, cwd=self.folder,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                # A test run killed outright still takes its node down: the script
                # stops the Erlang VM when it gets SIGTERM.
                preexec_fn=terminate_with_parent,
            )
        self.starts += 1
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the private RabbitMQ node exited while starting:\n{self.log()[-3000:]}")
            if _accepts(self.port):
                return self
            time.sleep(0.2)
        raise RuntimeError(f"the private RabbitMQ node did not start in {START_TIMEOUT_SECONDS}s")

    def stop(self):
        """A clean stop (what a rolling restart or an operator does)."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        # The Erlang VM may outlive the script by a moment: wait for the port to close.
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        while _accepts(self.port) and time.monotonic() < deadline:
            time.sleep(0.1)

    def ctl(self, *arguments):
        """What `rabbitmqctl <arguments>` prints, run against this node."""
        # Into a file, not a pipe: under eventlet, a pipe's reader can outlive the
        # command and trip the next user of its descriptor.
        with tempfile.TemporaryFile("w+") as printed:
            subprocess.run(
                [str(Path(server_script()).with_name("rabbitmqctl")), "-n", self.name, *arguments],
                env=self.environment(), stdout=printed, stderr=subprocess.DEVNULL, timeout=60, check=True,
            )
            printed.seek(0)
            return printed.read()

    def queues(self):
        """{queue name: consumer count} of every queue, from rabbitmqctl."""
        lines = self.ctl("list_queues", "name", "consumers", "--no-table-headers", "--quiet").splitlines()
        return {name: int(consumers) for name, consumers in (line.rsplit(None, 1) for line in lines if line.strip())}

    def restart(self):
        self.stop()
        return self.start()


def _accepts(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


@contextmanager
def private_rabbit_node(folder):
    """A started node, stopped on exit whatever happened."""
    node = RabbitNode(folder)
    try:
        yield node.start()
    finally:
        node.stop()
        if node.process is not None and node.process.poll() is None:
            os.killpg(node.process.pid, signal.SIGKILL)
