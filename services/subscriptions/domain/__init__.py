"""The subscriptions domain, free of nameko and SQLAlchemy (an import-linter contract
in pyproject.toml keeps it so): `rules` holds the pure functions, `subscription` the
aggregate that applies them, `commands` what handlers.py is asked to do.

`from services.subscriptions import domain` keeps giving the rules by their names."""
from services.subscriptions.domain.rules import *  # noqa: F401,F403
