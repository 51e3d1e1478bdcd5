"""Production mode: with `PORTAL_ENV=production` a process refuses to start on any
setting that is only safe on a developer's machine, naming each one, before it
serves anything (`ObservedContainer` calls `refuse_unsafe_production`).

A process is checked on what it reads: AMQP_URI, the URL of each `Database` it uses,
the plain secrets its service class names in `secret_settings`, and the settings every
process shares."""
import os
from urllib.parse import urlsplit

from services.common.config import setting_is_on

DEVELOPMENT, PRODUCTION = "development", "production"
# Secrets this repository ships as defaults (config.yaml, deploy/compose.yaml), so
# everyone knows them; tests/deploy checks that each shipped default is listed here.
SHIPPED_SECRETS = frozenset({
    "dev-only-processor-webhook-secret", "compose-only-processor-webhook-secret",
    "guest", "portal", "postgres", "auth", "subscriptions", "billing", "notifications",
    # compose's broker users' passwords (deploy/rabbitmq/broker_users.py)
    "gateway", "operator", "events-reader",
})
# Public URLs a browser opens: login links, session cookies and card numbers travel on them.
PUBLIC_URLS = ("PORTAL_BASE_URL", "BILLING_PUBLIC_URL")


def portal_env(config):
    return str(config.get("PORTAL_ENV") or DEVELOPMENT).strip().lower()


def in_production(config):
    return portal_env(config) == PRODUCTION


def url_credentials_refusal(name, url):
    """Why the credentials in `url` (AMQP_URI, a *_DB_URL) are unsafe, or None."""
    parts = urlsplit(str(url))
    if name == "AMQP_URI" and parts.username == "guest":
        return f"{name} logs in as RabbitMQ's `guest` user; give the portal a user of its own"
    if parts.password in SHIPPED_SECRETS:
        return f"{name} uses a default password shipped with the portal; set a secret one"
    return None


def production_refusals(config, environ=os.environ, secret_settings=(), url_settings=()):
    """Every reason `config` (and `environ`, which the clock reads) is unfit for
    production, as sentences naming the setting; empty when fit or in development.

    `secret_settings` name the plain secrets the process reads; `url_settings` the
    URLs with credentials besides AMQP_URI (its database's)."""
    env = portal_env(config)
    if env not in (DEVELOPMENT, PRODUCTION):
        return [f"PORTAL_ENV is {env!r}; it must be {DEVELOPMENT!r} or {PRODUCTION!r}"]
    if env != PRODUCTION:
        return []
    refusals = []
    for name in secret_settings:
        value = config.get(name)
        if not value or value in SHIPPED_SECRETS:
            refusals.append(f"{name} is unset or a default shipped with the portal; set a secret one")
    for name in ("AMQP_URI", *url_settings):
        refusal = url_credentials_refusal(name, config.get(name, ""))
        if refusal:
            refusals.append(refusal)
    if environ.get("CLOCK_FILE"):
        refusals.append("CLOCK_FILE is set; it makes the clock a file anyone who can write it controls (tests only)")
    if setting_is_on(config.get("WEBHOOK_ALLOW_PRIVATE_ADDRESSES", False)):
        refusals.append("WEBHOOK_ALLOW_PRIVATE_ADDRESSES is on; webhooks could reach the portal's own network")
    for name in PUBLIC_URLS:
        if urlsplit(str(config.get(name, ""))).scheme != "https":
            refusals.append(f"{name} is not an https:// URL; its links, cookies and forms would travel in clear")
    return refusals


def refuse_unsafe_production(config, process, **settings):
    """Exit (status 1) with every refusal named, before `process` serves anything."""
    refusals = production_refusals(config, **settings)
    if refusals:
        lines = "\n".join(f"  - {refusal}" for refusal in refusals)
        raise SystemExit(f"{process} refuses to start with PORTAL_ENV={portal_env(config)}:\n{lines}")
