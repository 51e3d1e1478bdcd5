"""`make run` is for development: with PORTAL_ENV=production it stops before it
migrates, starts or loads anything."""
import os
import subprocess
import sys

from services.common.config import REPO_ROOT
from support.ports import free_port


def test_make_run_refuses_production_mode(tmp_path):
    databases = {f"{service.upper()}_DB_URL": f"sqlite:///{tmp_path}/{service}.db"
                 for service in ("auth", "subscriptions", "billing", "notifications")}
    # Should it start anyway: nothing on the machine's ports or broker.
    isolated = {name: str(free_port()) for name in ("GATEWAY_PORT", "BILLING_PORT", "SMTP_PORT", "MAIL_SINK_PORT")}
    isolated["AMQP_URI"] = f"amqp://nobody:nothing@127.0.0.1:{free_port()}/"
    finished = subprocess.run(
        [sys.executable, "-m", "devtools.run"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
        env={"PATH": os.environ.get("PATH", ""), "PORTAL_ENV": "production", "EVENTLET_TESTS": "1", **databases, **isolated},
    )
    assert finished.returncode != 0
    assert "`make run` is for development only" in finished.stderr
    assert list(tmp_path.iterdir()) == [], "it migrated databases first"
