"""`make run` itself: Ctrl-C stops every process it started, and a second run on the
same folder (databases, mail, demo data already there) comes up the same."""
import os
import signal
import time

import pytest
import requests

from support.system import RunningSystem, running

# `make run` brings its own databases up (SQLite, or PostgreSQL where a test says so).
pytestmark = pytest.mark.fixed_database


def test_ctrl_c_stops_everything_and_a_second_run_works(tmp_path):
    summaries = []
    for _ in range(2):
        system = RunningSystem(tmp_path)
        try:
            system.start()
            started = system.descendants()
            assert len(started) >= 7  # honcho, the sink, four services and the gateway
            assert requests.get(f"{system.gateway_url}/status", timeout=10).status_code == 200
            buyers = requests.post(
                f"{system.gateway_url}/api/v1/auth/login-links", json={"email": "ana@example.com"}, timeout=10,
            )
            assert buyers.status_code == 202
            summaries.append(next(line for line in system.log().splitlines() if "demo data loaded" in line))
        finally:
            system.stop()
        assert system.process.returncode == 0, system.log()[-2000:]
        assert [pid for pid in started if running(pid)] == []
        # No fault while serving (between ready and Ctrl-C); start-up polls of /status
        # may meet services still connecting, and Ctrl-C may cut a request short.
        serving = system.log().split("demo data loaded", 1)[-1].split("SIGINT received", 1)[0]
        assert "Traceback" not in serving
        # Each process's log opens with its own lines, not with our stack's start-up notices.
        assert "Eventlet is deprecated" not in system.log()
        assert "pkg_resources is deprecated" not in system.log()
    # The demo loader is idempotent: the second run finds the same data, not twice as much.
    assert summaries[0] == summaries[1]


def consumers_of(system, queue, wait=20):
    """The consumer count the management API reports (its statistics lag a few seconds)."""
    deadline = time.monotonic() + wait
    count = None
    while time.monotonic() < deadline:
        info = requests.get(
            f"http://localhost:15672/api/queues/{system.vhost}/{queue}", auth=("guest", "guest"), timeout=10,
        ).json()
        count = info.get("consumers")
        if count == 2:
            break
        time.sleep(0.5)
    return count


def test_replicas_run_as_competing_consumers_on_postgresql(tmp_path):
    system = RunningSystem(tmp_path, database_backend="postgresql", extra_env={"REPLICAS": "2"})
    try:
        system.start()
        for module in ("services.auth.service", "services.billing.service", "gateway.service"):
            assert len(system.pids_of(module)) == 2, module
        assert consumers_of(system, "rpc-subscriptions") == 2
        assert requests.get(f"{system.gateway_url}/status", timeout=10).status_code == 200
        answer = requests.post(
            f"{system.gateway_url}/api/v1/auth/login-links", json={"email": "ana@example.com"}, timeout=10,
        )
        assert answer.status_code == 202
    finally:
        system.stop()


def test_a_killed_launcher_leaves_no_service_behind(tmp_path):
    system = RunningSystem(tmp_path)
    try:
        system.start()
        started = system.descendants()
        os.kill(system.process.pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(running(pid) for pid in started):
            time.sleep(0.5)
        assert [pid for pid in started if running(pid)] == []
    finally:
        system.stop()
