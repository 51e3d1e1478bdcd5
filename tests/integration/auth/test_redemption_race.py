"""Fifty concurrent redemptions of one login link, against auth running as several OS
processes on one database (real concurrency on SQLite as on PostgreSQL): exactly one
session opens, and every other caller gets the generic refusal."""
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from amqp.exceptions import NotFound
from kombu import Connection

from services.common.config import REPO_ROOT
from services.common.errors import Unauthorized
from support.auth_testing import BUYER, rows

PROCESSES = 2
REDEMPTIONS = 50
# Each process takes at most this many at once, so the redemptions spread over all.
WORKERS = 25
NONCE = "the-asking-browser"


def consumers(amqp_uri, queue):
    """How many consumers `queue` has now (a passive declare: exact, no stats delay)."""
    with Connection(amqp_uri) as connection:
        try:
            return connection.default_channel.queue_declare(queue, passive=True).consumer_count
        except NotFound:  # no process has declared it yet
            return 0


@pytest.fixture
def auth_processes(config, tmp_path):
    config_file = tmp_path / "auth.yaml"
    config_file.write_text(yaml.safe_dump({**config, "max_workers": WORKERS}))
    log_path = tmp_path / "auth-processes.log"
    nameko = Path(sys.executable).parent / "nameko"
    with log_path.open("wb") as log:
        processes = [
            subprocess.Popen(
                [str(nameko), "run", "--config", str(config_file), "services.auth.service:AuthService"],
                cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
            )
            for _ in range(PROCESSES)
        ]
    try:
        deadline = time.monotonic() + 60
        while consumers(config["AMQP_URI"], "rpc-auth") < PROCESSES:
            assert time.monotonic() < deadline, log_path.read_text()
            assert all(process.poll() is None for process in processes), log_path.read_text()
            time.sleep(0.2)
        yield log_path
    finally:
        for process in processes:
            process.send_signal(signal.SIGINT)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_fifty_concurrent_redemptions_open_exactly_one_session(
    start_subscriptions, start_notifications, auth_processes, cluster, config, wait_for_emails,
):
    start_subscriptions()
    start_notifications()
    cluster.auth.request_login_link(BUYER, nonce=NONCE)
    token = parse_qs(urlsplit(wait_for_emails(1)[0]["link"]).query)["token"][0]

    calls = [cluster.auth.redeem_login.call_async(token=token, nonce=NONCE) for _ in range(REDEMPTIONS)]
    sessions, refusals = [], []
    for call in calls:
        try:
            sessions.append(call.result()["session"]["id"])
        except Unauthorized as refused:
            refusals.append(refused.code)

    assert len(sessions) == 1
    assert refusals == ["invalid_login_link"] * (REDEMPTIONS - 1)
    assert [row["id"] for row in rows(config["AUTH_DB_URL"], "sessions")] == sessions
    assert token not in auth_processes.read_text()
