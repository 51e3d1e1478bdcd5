"""deploy/entrypoint.sh outside Docker: fake `nameko`, `portalctl` and `python` on PATH
print how they were called, so each role's command is checked without running it."""
import json
import os
import signal
import subprocess
import sys

import pytest

from services.common.config import REPO_ROOT

ENTRYPOINT = REPO_ROOT / "deploy" / "entrypoint.sh"
FAKE_PROGRAM = """#!/bin/sh
# Prints its pid, name, arguments and listen address as JSON; with FAKE_WAIT it then
# waits for SIGTERM and reports it.
trap 'echo terminated; exit 0' TERM
{python} - "$$" "$(basename "$0")" "$@" <<'PY'
import json, os, sys
print(json.dumps({{"pid": int(sys.argv[1]), "argv": sys.argv[2:],
                  "listen": os.environ.get("WEB_SERVER_ADDRESS")}}), flush=True)
PY
if [ -n "${{FAKE_WAIT:-}}" ]; then
    while :; do sleep 0.05; done
fi
"""


@pytest.fixture
def fake_bin(tmp_path):
    for name in ("nameko", "portalctl", "python"):
        program = tmp_path / name
        program.write_text(FAKE_PROGRAM.format(python=sys.executable))
        program.chmod(0o755)
    return tmp_path


def environment(fake_bin, **extra):
    return {"PATH": f"{fake_bin}{os.pathsep}/usr/bin{os.pathsep}/bin", **extra}


def run_entrypoint(fake_bin, *args, **env):
    return subprocess.run(
        [str(ENTRYPOINT), *args], env=environment(fake_bin, **env), capture_output=True, text=True, timeout=30,
    )


def called(fake_bin, *args, **env):
    finished = run_entrypoint(fake_bin, *args, **env)
    assert finished.returncode == 0, finished.stderr
    return json.loads(finished.stdout)


@pytest.mark.parametrize("role", ["auth", "subscriptions", "billing", "notifications", "gateway"])
def test_each_service_role_runs_its_procfile_command(fake_bin, role, procfile):
    call = called(fake_bin, role)
    assert call["argv"] == procfile[role].split()


def test_gateway_and_billing_listen_on_every_interface_at_port(fake_bin):
    assert called(fake_bin, "gateway")["listen"] == "0.0.0.0:8000"
    assert called(fake_bin, "billing")["listen"] == "0.0.0.0:8001"
    assert called(fake_bin, "gateway", PORT="9000")["listen"] == "0.0.0.0:9000"
    assert called(fake_bin, "billing", PORT="9001")["listen"] == "0.0.0.0:9001"
    assert called(fake_bin, "auth", WEB_SERVER_ADDRESS="127.0.0.1:1")["listen"] == "127.0.0.1:1"


def test_migrate_runs_portalctl_and_passes_arguments_on(fake_bin):
    assert called(fake_bin, "migrate")["argv"] == ["portalctl", "migrate"]
    assert called(fake_bin, "migrate", "--service", "billing")["argv"] == ["portalctl", "migrate", "--service", "billing"]
    assert called(fake_bin, "portalctl", "events", "dead-letters")["argv"] == ["portalctl", "events", "dead-letters"]


def test_mailsink_listens_on_every_interface(fake_bin):
    assert called(fake_bin, "mailsink")["argv"] == [
        "python", "-m", "devtools.mailsink", "--smtp-host", "0.0.0.0", "--http-host", "0.0.0.0",
    ]


@pytest.mark.parametrize("args", [("worker",), ("",), ("AUTH",), ()])
def test_an_unknown_or_missing_role_is_a_clear_error(fake_bin, args):
    finished = run_entrypoint(fake_bin, *args)
    assert finished.returncode == 64
    assert finished.stdout == ""
    assert "usage: entrypoint.sh auth|subscriptions|billing|notifications|gateway|migrate|mailsink" in finished.stderr
    if args:
        assert f"unknown process '{args[0]}'" in finished.stderr


def test_the_process_replaces_the_shell_and_receives_sigterm_itself(fake_bin):
    process = subprocess.Popen(
        [str(ENTRYPOINT), "notifications"], env=environment(fake_bin, FAKE_WAIT="1"),
        stdout=subprocess.PIPE, text=True,
    )
    try:
        call = json.loads(process.stdout.readline())
        # exec: the program has the entrypoint's own pid, so it is PID 1 in a container.
        assert call["pid"] == process.pid
        process.send_signal(signal.SIGTERM)
        assert process.stdout.readline().strip() == "terminated"
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
