"""`make run`: migrations, the dev mail sink, every service as its own process, demo
data, and a banner that says where to go. Ctrl-C stops everything."""
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

# Before the imports below pull in nameko and eventlet: see process_environment().
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
warnings.filterwarnings("ignore", message="pkg_resources is deprecated")

import requests  # noqa: E402

from devtools import demo_mercadopago  # noqa: E402
from devtools.lifetime import terminate_with_parent  # noqa: E402
from portalctl.cli import cluster_rpc  # noqa: E402
from services.billing.credentials import KEYS_SETTING, new_key  # noqa: E402
from services.common import migrations  # noqa: E402
from services.common.config import REPO_ROOT, load_config  # noqa: E402
from services.common.production import in_production  # noqa: E402

SERVICE_PROCESSES = ["auth", "subscriptions", "billing", "notifications", "gateway"]
STARTUP_SECONDS = 90
# What a process needs past its stop grace to kill what is left and exit.
EXIT_MARGIN_SECONDS = 5


# make run's key sealing processor credentials in var/billing.db: made once, kept with it.
DEV_CREDENTIAL_KEYS = REPO_ROOT / "var" / "billing-credential-keys"


def dev_credential_keys(path=DEV_CREDENTIAL_KEYS):
    """The development BILLING_CREDENTIAL_KEYS, read from `path` (readable by its owner
    only), made there first if missing."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as keys:
            keys.write(new_key() + "\n")
    return path.read_text().strip()


def fake_asaas_url(config):
    return f"http://127.0.0.1:{config['FAKE_ASAAS_PORT']}/v3"


def fake_mercadopago_url(config):
    return f"http://127.0.0.1:{config['FAKE_MERCADOPAGO_PORT']}"


def process_environment(config):
    """Every process reads config.yaml; the Procfile also needs a few values in its shell."""
    env = dict(os.environ)
    if not env.get(KEYS_SETTING):
        env[KEYS_SETTING] = dev_credential_keys()
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    # Start-up notices of our pinned stack would open every process's log: eventlet's
    # deprecation banner (skipped when EVENTLET_TESTS is set) and nameko's pkg_resources import.
    env.setdefault("EVENTLET_TESTS", "1")
    env.setdefault("PYTHONWARNINGS", "ignore:pkg_resources is deprecated:UserWarning")
    for key in ("SMTP_PORT", "MAIL_SINK_PORT", "BILLING_PORT", "GATEWAY_PORT", "FAKE_ASAAS_PORT",
                "FAKE_MERCADOPAGO_PORT"):
        env[key] = str(config[key])
    # Merchants on Asaas's sandbox are charged by devtools' fake Asaas (set it to use the real one).
    env.setdefault("ASAAS_SANDBOX_URL", fake_asaas_url(config))
    # Merchants on Mercado Pago are charged by devtools' fake Mercado Pago (set it to use the real one).
    env.setdefault("MERCADOPAGO_API_URL", fake_mercadopago_url(config))
    # A developer's webhook receiver runs on this machine; the portal's own ports stay refused.
    env.setdefault("WEBHOOK_ALLOW_PRIVATE_ADDRESSES", "true")
    return env


def wait_until_ready(gateway_url, honcho):
    deadline = time.monotonic() + STARTUP_SECONDS
    last = "no answer yet"
    while time.monotonic() < deadline:
        if honcho.poll() is not None:
            raise SystemExit(f"a process exited during start-up (exit code {honcho.returncode}); see the log above")
        try:
            answer = requests.get(f"{gateway_url}/status", timeout=3)
            if answer.status_code == 200:
                return
            last = answer.json().get("error", {}).get("message", answer.status_code)
        except requests.RequestException as error:
            last = type(error).__name__
        time.sleep(0.5)
    raise SystemExit(f"the services did not become ready in {STARTUP_SECONDS}s: {last}")


def banner(config, runs_mail_sink, demo_summary):
    mail = (
        f"http://localhost:{config['MAIL_SINK_PORT']}  (every e-mail the portal sends lands here)"
        if runs_mail_sink else f"sent through {config['SMTP_HOST']}:{config['SMTP_PORT']}"
    )
    emails = ", ".join(demo_summary.get("buyers", []))
    return "\n".join([
        "",
        "=" * 72,
        f"  Portal do Cliente:  {config['PORTAL_BASE_URL']}",
        f"  E-mails:            {mail}",
        f"  Status:             http://localhost:{config['GATEWAY_PORT']}/status",
        f"  Demo buyers:        {emails}",
        "  Ask for a login link with a demo e-mail, then open it from the mail page.",
        f"  Fake Asaas:         {fake_asaas_url(config)}  (Gama Academia's processor)",
        f"  Fake Mercado Pago:  {fake_mercadopago_url(config)}  (Delta Idiomas's processor)",
        "  Ctrl-C stops everything.",
        "=" * 72,
        "",
    ])


def use_local_postgres(admin_url):
    """`DATABASE=postgresql`: one database per service on a local PostgreSQL, created
    on first use; an explicit *_DB_URL still wins."""
    import psycopg2

    admin = psycopg2.connect(admin_url)
    admin.autocommit = True
    with admin.cursor() as cursor:
        for service in migrations.SERVICES_WITH_DATABASE:
            name = f"portal_{service}"
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cursor.fetchone() is None:
                cursor.execute(f'CREATE DATABASE "{name}"')
            os.environ.setdefault(migrations.db_url_key(service), admin_url.rsplit("/", 1)[0] + f"/{name}")
    admin.close()


def replica_counts(config, replicas):
    """honcho's `-c` for N processes of every service: competing consumers on the same
    queues; the gateway and billing share their ports (SO_REUSEPORT)."""
    if replicas > 1:
        on_sqlite = [key for key in map(migrations.db_url_key, migrations.SERVICES_WITH_DATABASE)
                     if str(config[key]).startswith("sqlite")]
        if on_sqlite:
            raise SystemExit(
                f"REPLICAS={replicas} needs PostgreSQL (SQLite is for one process per service): "
                f"run `make run DATABASE=postgresql REPLICAS={replicas}` or set {', '.join(on_sqlite)}."
            )
    return ",".join(f"{name}={replicas}" for name in SERVICE_PROCESSES)


def main():
    os.chdir(REPO_ROOT)
    if os.environ.get("DATABASE") == "postgresql":
        use_local_postgres(os.environ.get("POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    config = load_config()
    if in_production(config):
        # It loads demo data and lets webhooks reach this machine's network.
        raise SystemExit("`make run` is for development only: unset PORTAL_ENV (it is production).")
    concurrency = replica_counts(config, int(os.environ.get("REPLICAS", "1")))
    for service in migrations.SERVICES_WITH_DATABASE:
        migrations.upgrade(service)
    print("==> databases migrated", flush=True)

    # A configured SMTP_HOST replaces the development sink (SMTP_PORT alone moves the sink).
    runs_mail_sink = not os.environ.get("SMTP_HOST")
    processes = (["mailsink"] if runs_mail_sink else []) + ["fakeasaas", "fakemercadopago"] + SERVICE_PROCESSES
    # SIGTERM (a supervisor, or a test run ending) stops everything like Ctrl-C does.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    kill_after = float(config["STOP_GRACE_SECONDS"]) + EXIT_MARGIN_SECONDS
    environment = process_environment(config)
    honcho = subprocess.Popen(
        [sys.executable, "-m", "devtools.procfile_runner", str(kill_after),
         "start", "-f", "Procfile", "-c", concurrency, *processes],
        env=environment, preexec_fn=terminate_with_parent,
    )
    try:
        gateway = f"http://127.0.0.1:{config['GATEWAY_PORT']}"
        wait_until_ready(gateway, honcho)
        from portalctl.demo import load_demo, register_gama_webhook

        with cluster_rpc(config) as rpc:
            summary = load_demo(rpc, gateway)
            if environment["ASAAS_SANDBOX_URL"] == fake_asaas_url(config):
                # The fake Asaas keeps nothing across runs: Gama's webhook is registered again.
                register_gama_webhook(rpc, environment["ASAAS_SANDBOX_URL"])
            if environment["MERCADOPAGO_API_URL"] == fake_mercadopago_url(config):
                # The merchant on the fake Mercado Pago, where billing's MERCADOPAGO_API_URL points.
                summary["mercadopago_merchant"] = demo_mercadopago.load(rpc, environment["MERCADOPAGO_API_URL"])
        print(f"==> demo data loaded: {summary}", flush=True)
        print(banner(config, runs_mail_sink, summary), flush=True)
        return honcho.wait()
    except (KeyboardInterrupt, SystemExit) as stop:
        if honcho.poll() is None:
            honcho.send_signal(signal.SIGINT)
        honcho.wait()
        if isinstance(stop, SystemExit) and stop.code not in (None, 0):
            print(stop.code, file=sys.stderr)
            return 1
        return 0


if __name__ == "__main__":
    sys.exit(main())
