"""The development SMTP sink (devtools/mailsink.py) as a test helper.

    with running_mailsink(tmp_path / "mail") as sink:
        config["SMTP_PORT"] = sink.smtp_port
        ...
        [message] = sink.wait_for_messages(1, to="ana@example.com")

The sink runs as its own process (it uses asyncio and real threads, and the test
process is monkey-patched by eventlet). Each message from `/api/messages` is a dict
{"id", "from", "to": [...], "subject", "date", "text", "html", "links"}, newest first.
"""
import email.policy
import subprocess
import sys
import time
from contextlib import contextmanager
from email.parser import BytesHeaderParser
from pathlib import Path

import requests

from devtools.lifetime import terminate_with_parent
from support.ports import free_ports

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_SECONDS = 20


class Mailsink:
    def __init__(self, process, smtp_port, http_port, mail_dir, log_path):
        self.process = process
        self.smtp_host = "127.0.0.1"
        self.smtp_port = smtp_port
        self.base_url = f"http://127.0.0.1:{http_port}"
        self.mail_dir = mail_dir  # where the sink keeps each message as a .eml file
        self.log_path = log_path

    def log(self):
        return self.log_path.read_text(errors="replace")

    def messages(self, to=None):
        """Every message received so far (newest first), or only those sent to `to`."""
        params = {"to": to} if to else {}
        response = requests.get(f"{self.base_url}/api/messages", params=params, timeout=10)
        response.raise_for_status()
        return response.json()

    def wait_for_messages(self, count, to=None, timeout=10):
        """The messages once at least `count` have arrived; fails after `timeout` s."""
        deadline = time.monotonic() + timeout
        while True:
            messages = self.messages(to=to)
            if len(messages) >= count:
                return messages
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} message(s) to {to or 'anyone'}, got {len(messages)}")
            time.sleep(0.1)

    def clear(self):
        requests.delete(f"{self.base_url}/api/messages", timeout=10).raise_for_status()

    def message_ids(self):
        """The Message-ID header of every message received so far, one per message."""
        parser = BytesHeaderParser(policy=email.policy.default)
        return [parser.parsebytes(path.read_bytes())["Message-ID"] for path in sorted(self.mail_dir.glob("*.eml"))]


def _wait_until_healthy(sink):
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if sink.process.poll() is not None:
            raise RuntimeError(f"mailsink exited with {sink.process.returncode}:\n{sink.log()}")
        try:
            if requests.get(f"{sink.base_url}/healthz", timeout=2).text == "ok":
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"mailsink did not become healthy:\n{sink.log()}")


@contextmanager
def running_mailsink(directory, smtp_port=None, http_port=None):
    """Start the SMTP sink keeping mail under `directory`; stop it on exit.

    Start it again with the same directory and ports to see a mail server come back:
    what it received before is still there.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if smtp_port is None or http_port is None:
        smtp_port, http_port = free_ports(2)
    mail_dir = directory / "messages"
    log_path = directory / "mailsink.log"
    command = [
        sys.executable, "-m", "devtools.mailsink",
        "--smtp-port", str(smtp_port), "--http-port", str(http_port), "--dir", str(mail_dir),
    ]
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=log_file, stderr=subprocess.STDOUT,
                                   preexec_fn=terminate_with_parent)
    try:
        sink = Mailsink(process, smtp_port, http_port, mail_dir, log_path)
        _wait_until_healthy(sink)
        yield sink
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        process.wait()
