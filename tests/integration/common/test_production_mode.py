"""PORTAL_ENV=production through the real start of each process (its Procfile
command): every development default makes it exit non-zero before it starts any
service, naming the setting; with fit settings billing serves, without its sandbox
pay route."""
import os
import secrets
import subprocess
import sys
import uuid
from urllib.parse import urlsplit

import pytest
import requests
from nameko.exceptions import UnknownService
from nameko.standalone.rpc import ClusterRpcProxy

from services.billing.credentials import new_key
from services.common.migrations import SERVICES_WITH_DATABASE, db_url_key
from support.fleet import PROCESS_NAMES, start_procfile_process
from support.ports import free_port
from support.waiting import wait_until

# How long a refused process may take to import its code and exit.
EXIT_SECONDS = 60
FIT_SECRET = secrets.token_urlsafe(32)
FIT_CREDENTIAL_KEY = new_key()


def fit_environment(tmp_path, amqp_uri=None, billing_db_url=None):
    """Production settings with no development default; nothing else from this
    process's environment, so config.yaml's defaults apply to the rest."""
    return {
        "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONUNBUFFERED": "1",
        "EVENTLET_TESTS": "1",
        "PYTHONWARNINGS": "ignore:pkg_resources is deprecated:UserWarning",
        "PORTAL_ENV": "production",
        "AMQP_URI": amqp_uri or f"amqp://portal-test:{FIT_SECRET}@127.0.0.1:5672/",
        **{db_url_key(service): f"sqlite:///{tmp_path}/{service}.db" for service in SERVICES_WITH_DATABASE},
        **({"BILLING_DB_URL": billing_db_url} if billing_db_url else {}),
        "PROCESSOR_WEBHOOK_SECRET": FIT_SECRET,
        "BILLING_CREDENTIAL_KEYS": FIT_CREDENTIAL_KEY,
        "PORTAL_BASE_URL": "https://portal.example.com",
        "BILLING_PUBLIC_URL": "https://pagamento.example.com",
        "GATEWAY_PORT": str(free_port()),
        "BILLING_PORT": str(free_port()),
        "SMTP_PORT": "25",
        "MAIL_SINK_PORT": str(free_port()),
        "METRICS_PORT": "0",
    }


def start(tmp_path, name, env):
    log_path = tmp_path / f"{name}-{uuid.uuid4().hex[:6]}.log"
    with log_path.open("ab") as log:
        process = start_procfile_process(name, env, log)
    process.log_path = log_path
    return process


def ended(process):
    """Its exit code within EXIT_SECONDS; else it is killed, and None."""
    try:
        return process.wait(timeout=EXIT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return None


def refusal(tmp_path, name, env):
    """The output of process `name` started with `env`, which must exit non-zero."""
    process = start(tmp_path, name, env)
    code = ended(process)
    if code is None:
        raise AssertionError(f"{name} did not refuse to start:\n{process.log_path.read_text()[-2000:]}")
    output = process.log_path.read_text()
    assert code != 0, output
    assert f"{name} refuses to start with PORTAL_ENV={env['PORTAL_ENV']}" in output
    assert "starting services" not in output, "it refused only after starting"
    return output


@pytest.mark.parametrize("changes, named", [
    ({"PROCESSOR_WEBHOOK_SECRET": None}, "PROCESSOR_WEBHOOK_SECRET is unset or a default"),
    ({"PROCESSOR_WEBHOOK_SECRET": "compose-only-processor-webhook-secret"},
     "PROCESSOR_WEBHOOK_SECRET is unset or a default"),
    ({"BILLING_CREDENTIAL_KEYS": None}, "BILLING_CREDENTIAL_KEYS is unset"),
    ({"AMQP_URI": None}, "AMQP_URI logs in as RabbitMQ's `guest` user"),
    ({"AMQP_URI": f"amqp://guest:{FIT_SECRET}@127.0.0.1:5672/"}, "AMQP_URI logs in as RabbitMQ's `guest` user"),
    ({"AMQP_URI": "amqp://portal:portal@127.0.0.1:5672/"}, "AMQP_URI uses a default password"),
    ({"BILLING_DB_URL": "postgresql://billing:billing@127.0.0.1:5432/billing"}, "BILLING_DB_URL uses a default password"),
    ({"CLOCK_FILE": "clock.json"}, "CLOCK_FILE is set"),
    ({"WEBHOOK_ALLOW_PRIVATE_ADDRESSES": "true"}, "WEBHOOK_ALLOW_PRIVATE_ADDRESSES is on"),
    ({"PORTAL_BASE_URL": "http://portal.example.com"}, "PORTAL_BASE_URL is not an https:// URL"),
    ({"BILLING_PUBLIC_URL": "http://pagamento.example.com"}, "BILLING_PUBLIC_URL is not an https:// URL"),
    ({"PORTAL_ENV": "prod"}, "PORTAL_ENV is 'prod'"),
], ids=["webhook-secret-unset", "webhook-secret-compose", "credential-keys-unset", "amqp-unset", "amqp-guest-user", "amqp-compose",
        "database-compose", "clock-file", "private-webhooks", "http-portal", "http-billing", "unknown-env"])
def test_billing_refuses_to_start_on_each_development_default(tmp_path, changes, named):
    env = fit_environment(tmp_path) | changes
    env = {key: value for key, value in env.items() if value is not None}
    output = refusal(tmp_path, "billing", env)
    (line,) = [line for line in output.splitlines() if line.startswith("  - ")]
    assert line.startswith(f"  - {named}")


@pytest.mark.parametrize("name", PROCESS_NAMES)
def test_every_process_refuses_the_default_broker_user_and_its_composes_database_password(tmp_path, name):
    env = fit_environment(tmp_path)
    del env["AMQP_URI"]  # config.yaml's guest:guest
    if name in SERVICES_WITH_DATABASE:
        env[db_url_key(name)] = f"postgresql://{name}:{name}@127.0.0.1:5432/{name}"
    output = refusal(tmp_path, name, env)
    assert "AMQP_URI logs in as RabbitMQ's `guest` user" in output
    if name in SERVICES_WITH_DATABASE:
        assert f"{db_url_key(name)} uses a default password" in output


@pytest.fixture
def broker_user(request, rabbit_config):
    """A broker user of this test's own, with every right on the test's vhost (the
    tests' broker has only `guest`, which production refuses)."""
    api = request.config.getoption("RABBIT_API_URI").rstrip("/")
    name, password = f"portal-test-{uuid.uuid4().hex[:8]}", secrets.token_urlsafe(16)
    requests.put(f"{api}/api/users/{name}", json={"password": password, "tags": ""}, timeout=10).raise_for_status()
    requests.put(f"{api}/api/permissions/{rabbit_config['vhost']}/{name}",
                 json={"configure": ".*", "write": ".*", "read": ".*"}, timeout=10).raise_for_status()
    broker = urlsplit(rabbit_config["AMQP_URI"])
    yield f"amqp://{name}:{password}@{broker.hostname}:{broker.port or 5672}/{rabbit_config['vhost']}"
    requests.delete(f"{api}/api/users/{name}", timeout=10)


def test_billing_starts_with_fit_settings_and_never_pays_through_the_sandbox(tmp_path, broker_user, migrated_db_url):
    env = fit_environment(tmp_path, amqp_uri=broker_user, billing_db_url=migrated_db_url("billing"))
    process = start(tmp_path, "billing", env)
    url = f"http://127.0.0.1:{env['BILLING_PORT']}"

    def serving(rpc):
        assert process.poll() is None, process.log_path.read_text()[-2000:]
        try:
            rpc.billing.ping()
            return requests.get(f"{url}/healthz", timeout=2).status_code == 200
        except (UnknownService, requests.ConnectionError):
            return False

    try:
        request = {
            "idempotency_key": f"renewal:{uuid.uuid4()}", "merchant_id": "acme-cursos", "email": "ana@example.com",
            "subscription_id": str(uuid.uuid4()), "cycle_number": 1, "kind": "renewal",
            "product_name": "Curso Premium", "amount_cents": 4990, "installments": 1, "method": "pix",
            "payment_token": None,
        }
        with ClusterRpcProxy({"AMQP_URI": broker_user}, timeout=30) as rpc:
            wait_until(lambda: serving(rpc), timeout=EXIT_SECONDS, message="billing's RPC and HTTP")
            order = rpc.billing.charge(request)
            assert order["status"] == "pending"

            paid = requests.post(f"{url}/sandbox/orders/{order['code']}/pay", timeout=10)

            assert paid.status_code == 404
            assert rpc.billing.charge(request)["status"] == "pending"
    finally:
        process.terminate()
        ended(process)
