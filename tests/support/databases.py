"""Throwaway PostgreSQL databases for tests, and a look at all a database keeps."""
import os
import uuid
from contextlib import contextmanager

import psycopg2
from sqlalchemy import MetaData, select

from services.common.db import make_engine
from support import secret_scan

POSTGRES_ADMIN_URL = os.environ.get("PORTAL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@contextmanager
def _admin_cursor():
    admin = psycopg2.connect(POSTGRES_ADMIN_URL)
    admin.autocommit = True  # CREATE and DROP DATABASE refuse to run in a transaction
    try:
        with admin.cursor() as cursor:
            yield cursor
    finally:
        admin.close()


def _postgres_url(name):
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def create_postgres_database(prefix):
    """A new empty database `<prefix>_<random>` on the test server: (name, url)."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with _admin_cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    return name, _postgres_url(name)


def drop_postgres_databases(names):
    """Drop the named databases, closing whatever is still connected to them, once the
    session's secret scan has looked at all they keep."""
    if not names:
        return
    try:
        for name in names:
            secret_scan.record(
                f"postgresql {name}: {problem}" for problem in secret_scan.scan_database(_postgres_url(name)))
    finally:
        with _admin_cursor() as cursor:
            for name in names:
                cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def every_stored_value(db_url):
    """Every value of every row of every table, as text: to prove a secret is kept nowhere."""
    engine = make_engine(db_url)
    metadata = MetaData()
    metadata.reflect(engine)
    try:
        with engine.connect() as connection:
            return [
                str(value)
                for table in metadata.sorted_tables
                for row in connection.execute(select(table))
                for value in row
            ]
    finally:
        engine.dispose()
