import os

import eventlet
import pytest
from eventlet import wsgi

from support.event_consumer import EventConsumer
from support.notifications import ScriptedSmtpServer
from support.system import BROKER, RunningSystem

ACCEPT = "250 ok"


@pytest.fixture(scope="session")
def mail_server():
    """The portal's mail server: accepts every recipient until a test says otherwise."""
    return ScriptedSmtpServer(ACCEPT)


@pytest.fixture(scope="session")
def failing_endpoint():
    """A merchant's webhook endpoint that answers every POST with 500."""
    listener = eventlet.listen(("127.0.0.1", 0))

    def refuse(environ, start_response):
        start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
        return [b"down"]

    server = eventlet.spawn(wsgi.server, listener, refuse, log_output=False)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/hooks/portal"
    server.kill()


@pytest.fixture(scope="module")
def system(tmp_path_factory, mail_server):
    """The whole portal as `make run` starts it, sending its e-mail to `mail_server`;
    webhooks give up after 2 s (instead of 24 h) and renewals run when a test asks.
    Stopped after its module (the e2e suite's own system may be up meanwhile)."""
    running = RunningSystem(
        tmp_path_factory.mktemp("contract-system"),
        database_backend=os.environ.get("PORTAL_TEST_DATABASE", "sqlite"),
        extra_env={
            "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(mail_server.port),
            "WEBHOOK_RETRY_BASE_SECONDS": "1", "WEBHOOK_RETRY_MAX_DELAY_SECONDS": "1",
            "WEBHOOK_RETRY_WINDOW_SECONDS": "2", "WEBHOOK_TIMEOUT": "2", "DELIVERY_POLL_INTERVAL": "0.2",
            "RENEWAL_INTERVAL": "3600",
        },
    )
    try:
        yield running.start()
    finally:
        running.stop()


@pytest.fixture
def consumer(system):
    """A plain pika consumer, bound to every event exchange before the test acts."""
    bound = EventConsumer(f"{BROKER}/{system.vhost}")
    yield bound
    bound.close()
