"""Shared Alembic environment: migrates the database of the service named in the config."""
import importlib

from alembic import context

from services.common.db import make_engine

service = context.config.get_main_option("service")
metadata = importlib.import_module(f"services.{service}.models").Base.metadata
url = context.config.get_main_option("sqlalchemy.url")

if context.is_offline_mode():
    context.configure(url=url, target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = make_engine(url)
    with engine.connect() as connection:
        # render_as_batch lets SQLite alter tables by copying them.
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
