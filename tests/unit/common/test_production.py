"""Production mode's check as a plain function: each development default refused by
name, a fit configuration and development mode let through."""
import pytest

from services.common.production import production_refusals

FIT = {
    "PORTAL_ENV": "production",
    "AMQP_URI": "amqp://portal-billing:Zq3xv9LmW2pQ@rabbitmq:5672/",
    "BILLING_DB_URL": "postgresql://billing:N7yTq2Lp8sKd@postgres:5432/billing",
    "PROCESSOR_WEBHOOK_SECRET": "a9f1c37e5b2d4e6f8a0b1c2d3e4f5a6b",
    "WEBHOOK_ALLOW_PRIVATE_ADDRESSES": "false",
    "PORTAL_BASE_URL": "https://portal.example.com",
    "BILLING_PUBLIC_URL": "https://pagamento.example.com",
}
BILLING = {"secret_settings": ("PROCESSOR_WEBHOOK_SECRET",), "url_settings": ("BILLING_DB_URL",)}


def refusals(environ=None, **changes):
    return production_refusals({**FIT, **changes}, environ=environ or {}, **BILLING)


def test_a_fit_production_configuration_passes():
    assert refusals() == []


def test_development_mode_checks_nothing():
    assert refusals(PORTAL_ENV="development", AMQP_URI="amqp://guest:guest@localhost/", PORTAL_BASE_URL="http://x",
                    environ={"CLOCK_FILE": "/tmp/clock.json"}) == []
    assert production_refusals({}, environ={}) == []


@pytest.mark.parametrize("changes, named", [
    ({"PROCESSOR_WEBHOOK_SECRET": "dev-only-processor-webhook-secret"}, "PROCESSOR_WEBHOOK_SECRET"),
    ({"PROCESSOR_WEBHOOK_SECRET": "compose-only-processor-webhook-secret"}, "PROCESSOR_WEBHOOK_SECRET"),
    ({"PROCESSOR_WEBHOOK_SECRET": ""}, "PROCESSOR_WEBHOOK_SECRET"),
    ({"AMQP_URI": "amqp://guest:guest@localhost:5672/"}, "AMQP_URI"),
    ({"AMQP_URI": "amqp://guest:S3cr3tButGuest@rabbitmq:5672/"}, "AMQP_URI"),
    ({"AMQP_URI": "amqp://portal:portal@rabbitmq:5672/"}, "AMQP_URI"),
    ({"BILLING_DB_URL": "postgresql://billing:billing@postgres:5432/billing"}, "BILLING_DB_URL"),
    ({"WEBHOOK_ALLOW_PRIVATE_ADDRESSES": "true"}, "WEBHOOK_ALLOW_PRIVATE_ADDRESSES"),
    ({"PORTAL_BASE_URL": "http://portal.example.com"}, "PORTAL_BASE_URL"),
    ({"BILLING_PUBLIC_URL": "http://pagamento.example.com"}, "BILLING_PUBLIC_URL"),
    ({"PORTAL_ENV": "prod"}, "PORTAL_ENV"),
])
def test_each_development_default_is_refused_by_name(changes, named):
    (refusal,) = refusals(**changes)
    assert refusal.startswith(named)


def test_a_clock_file_is_refused():
    (refusal,) = refusals(environ={"CLOCK_FILE": "/tmp/clock.json"})
    assert refusal.startswith("CLOCK_FILE")


def test_every_refusal_is_listed_at_once():
    found = refusals(AMQP_URI="amqp://guest:guest@localhost/", PROCESSOR_WEBHOOK_SECRET="",
                     PORTAL_BASE_URL="http://portal.example.com", environ={"CLOCK_FILE": "x"})
    assert [refusal.split()[0] for refusal in found] == [
        "PROCESSOR_WEBHOOK_SECRET", "AMQP_URI", "CLOCK_FILE", "PORTAL_BASE_URL"]


def test_only_the_broker_has_a_guest_user():
    (refusal,) = refusals(BILLING_DB_URL="postgresql://guest:guest@postgres/billing")
    assert refusal.startswith("BILLING_DB_URL uses a default password")


def test_a_process_is_checked_only_on_the_secrets_it_reads():
    # The gateway never reads billing's secret or database: their defaults do not stop it.
    config = {**FIT, "PROCESSOR_WEBHOOK_SECRET": "dev-only-processor-webhook-secret",
              "BILLING_DB_URL": "postgresql://billing:billing@postgres/billing"}
    assert production_refusals(config, environ={}) == []
