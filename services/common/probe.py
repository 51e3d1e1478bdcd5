"""Container health checks for processes that serve no HTTP of their own.

    python -m services.common.probe ready      # readiness
    python -m services.common.probe alive      # liveness
    python -m services.common.probe http URL   # any HTTP check (the image has no curl)

`ready` passes while the container holds an established TCP connection to the broker
port of AMQP_URI: the process's own broker link, read from /proc/net, so a broker
outage takes the pod out and its reconnection puts it back, with no restart. Another
service being down never fails it. `alive` fails only when the broker answers and the
process still has no link: a process that cannot reconnect to a reachable broker is
stuck and a restart helps; during a broker outage a restart would not, so it passes.

It reads the container's own network namespace, so it means something only inside a
container (under `make run` every process shares one). It runs every few seconds, so
it imports the standard library only, as long as AMQP_URI is set (as in every container).
"""
import os
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

TIMEOUT_SECONDS = 2
TCP_TABLES = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))
ESTABLISHED = "01"
DEFAULT_PORTS = {"amqp": 5672, "amqps": 5671}


def broker_address(amqp_uri):
    uri = urlsplit(amqp_uri)
    return uri.hostname or "localhost", uri.port or DEFAULT_PORTS.get(uri.scheme, 5672)


def amqp_uri():
    if os.environ.get("AMQP_URI"):
        return os.environ["AMQP_URI"]
    from services.common.config import load_config

    return load_config()["AMQP_URI"]


def has_established_connection(remote_port, tables=TCP_TABLES):
    """True when some socket of this network namespace is connected to `remote_port`."""
    for table in tables:
        try:
            rows = table.read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for row in rows:
            columns = row.split()
            remote, state = columns[2], columns[3]
            if state == ESTABLISHED and int(remote.rsplit(":", 1)[1], 16) == remote_port:
                return True
    return False


def reachable(host, port):
    try:
        socket.create_connection((host, port), timeout=TIMEOUT_SECONDS).close()
    except OSError:
        return False
    return True


def ready():
    host, port = broker_address(amqp_uri())
    if has_established_connection(port):
        return 0, f"connected to the broker on port {port}"
    return 1, f"no connection to the broker on port {port}"


def alive():
    host, port = broker_address(amqp_uri())
    if has_established_connection(port):
        return 0, f"connected to the broker on port {port}"
    if not reachable(host, port):
        return 0, f"the broker at {host}:{port} is down; waiting for it, a restart would not help"
    return 1, f"the broker at {host}:{port} answers but this process is not connected to it"


def http(url):
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as answer:
            return 0, f"{url} answered {answer.status}"
    except urllib.error.HTTPError as error:
        return 1, f"{url} answered {error.code}"
    except (OSError, ValueError) as error:
        return 1, f"{url} did not answer: {error}"


CHECKS = {"ready": ready, "alive": alive, "http": http}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in CHECKS or len(argv) != (2 if argv[0] == "http" else 1):
        print("usage: python -m services.common.probe ready | alive | http URL", file=sys.stderr)
        return 2
    status, message = CHECKS[argv[0]](*argv[1:])
    print(message, file=sys.stdout if status == 0 else sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
