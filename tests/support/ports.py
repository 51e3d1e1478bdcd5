"""Ports for the servers tests start.

A port found by binding to port 0 comes from the kernel's ephemeral range, and between
closing that probe and the server's own bind any outgoing connection of the machine
(an AMQP client, a PostgreSQL pool, an HTTP request) may take it as its local port:
the server then fails with "Address already in use". So test servers get ports below
the ephemeral range, which the kernel never hands to an outgoing connection, each
checked free by a bind, in an order of this process's own so that two test processes
rarely try the same one.
"""
import random
import socket
from pathlib import Path

LOWEST = 20000


def _ephemeral_start():
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default when the setting cannot be read


_HIGHEST = max(_ephemeral_start() - 1, LOWEST + 1000)
_candidates = random.Random().sample(range(LOWEST, _HIGHEST + 1), _HIGHEST + 1 - LOWEST)
_next = 0


def _bindable(port):
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(count):
    """`count` distinct ports outside the ephemeral range that nothing listens on now."""
    global _next
    ports = []
    for _ in range(len(_candidates)):
        port = _candidates[_next]
        _next = (_next + 1) % len(_candidates)
        if port not in ports and _bindable(port):
            ports.append(port)
            if len(ports) == count:
                return ports
    raise RuntimeError(f"fewer than {count} free ports between {LOWEST} and {_HIGHEST}")


def free_port():
    [port] = free_ports(1)
    return port
