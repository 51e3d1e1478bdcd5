"""The ports tests give their servers never come from the kernel's ephemeral range,
where an outgoing connection could take one between the check and the server's bind
(CI once failed so: billing's web server found its port taken)."""
import socket

import pytest

from support import ports


def test_ports_lie_below_the_ephemeral_range_and_are_free():
    first_ephemeral = ports._ephemeral_start()
    chosen = ports.free_ports(50)
    assert len(set(chosen)) == 50
    for port in chosen:
        assert ports.LOWEST <= port < first_ephemeral
        with socket.socket() as server:
            server.bind(("127.0.0.1", port))


def test_a_port_in_use_is_skipped(monkeypatch):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", ports.free_port()))
        busy.listen()
        taken = busy.getsockname()[1]
        free = ports.free_port()
        monkeypatch.setattr(ports, "_candidates", [taken, free])
        monkeypatch.setattr(ports, "_next", 0)
        assert ports.free_ports(1) == [free]
        assert ports.free_ports(1) == [free]  # once round, the busy one skipped again
        with pytest.raises(RuntimeError, match="fewer than 2 free ports"):
            ports.free_ports(2)


def test_the_web_servers_of_service_tests_use_them(web_config):
    port = int(web_config["WEB_SERVER_ADDRESS"].rsplit(":", 1)[1])
    assert ports.LOWEST <= port < ports._ephemeral_start()
