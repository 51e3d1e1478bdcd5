"""Alembic, once for every service.

The environment script and revision template live here; each service keeps only its
revisions, in `services/<service>/migrations/versions/`, applied to its own database.
"""
from alembic import command
from alembic.config import Config

from services.common.config import REPO_ROOT, load_config

SERVICES_WITH_DATABASE = ("auth", "subscriptions", "billing", "notifications")


def db_url_key(service):
    return f"{service.upper()}_DB_URL"


def alembic_config(service, url):
    config = Config()
    config.set_main_option("script_location", str(REPO_ROOT / "services" / "common" / "alembic"))
    config.set_main_option(
        "version_locations", str(REPO_ROOT / "services" / service / "migrations" / "versions")
    )
    config.set_main_option("service", service)
    # Alembic's ini interpolation treats '%' specially; URLs may contain it.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(service, url=None):
    """Bring `service`'s database to the newest revision (idempotent)."""
    url = url or load_config()[db_url_key(service)]
    command.upgrade(alembic_config(service, url), "head")


def new_revision(service, message, url=None):
    """Autogenerate a revision from the difference between models and the database."""
    url = url or load_config()[db_url_key(service)]
    config = alembic_config(service, url)
    command.upgrade(config, "head")
    command.revision(config, message=message, autogenerate=True)
