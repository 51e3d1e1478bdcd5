"""SQLAlchemy 2 engines and the per-worker unit of work.

`Database("AUTH_DB_URL")` is a nameko dependency: a worker writes
`with self.db.transaction() as session:` and the block commits on success and rolls
back on any error, so nothing half-done stays behind. The same URL key serves SQLite
(development default) and PostgreSQL (production and CI).
"""
import hashlib
from contextlib import contextmanager
from datetime import timezone
from pathlib import Path

from nameko.extensions import DependencyProvider
from sqlalchemy import DateTime, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import sessionmaker
from sqlalchemy.types import TypeDecorator

from services.common.errors import ServiceUnavailable

_green_postgres = {"patched": False}

# Constraint names for each service's MetaData, so later migrations can name what they
# alter (SQLite's batch mode cannot drop an unnamed constraint).
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _make_postgres_cooperative():
    # psycopg2 blocks in C; psycogreen makes it yield to eventlet's hub while waiting
    # on the server, so one slow query does not stall every worker of the process.
    if _green_postgres["patched"]:
        return
    import eventlet.patcher

    if eventlet.patcher.is_monkey_patched("socket"):
        from psycogreen.eventlet import patch_psycopg

        patch_psycopg()
        _green_postgres["patched"] = True


def make_engine(url):
    """An engine tuned for the backend: WAL + busy timeout for SQLite, green psycopg2."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    if parsed.get_backend_name() == "postgresql":
        _make_postgres_cooperative()
        # psycopg2 is the driver psycogreen can make cooperative; plain postgresql://
        # URLs would otherwise pick SQLAlchemy 2.1's default driver (psycopg 3).
        parsed = parsed.set(drivername="postgresql+psycopg2")
        return create_engine(parsed, pool_pre_ping=True, pool_size=10, max_overflow=10)
    return create_engine(url)


def is_postgres(engine):
    return engine.dialect.name == "postgresql"


def advisory_key(name):
    """A stable signed 64-bit number for `name` (Python's `hash` changes per process)."""
    return int.from_bytes(hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest(), "big", signed=True)


def lock_for_transaction(session, *names):
    """Hold a lock on each of `names` until the session's transaction ends, so that
    transactions that count something and then add to it run one after another.

    Call it once per transaction, with every name the transaction needs. On
    PostgreSQL: advisory locks on each name's `advisory_key`, taken in one order, so
    two transactions never each hold a lock the other waits for; a statement after
    this sees all that earlier holders committed (READ COMMITTED takes a new snapshot
    per statement). Nothing on SQLite, the development database: it has one writer at
    a time, and its calls never yield to another green thread of the process between
    a transaction's statements."""
    if not is_postgres(session.get_bind()):
        return
    for key in sorted({advisory_key(name) for name in names}):
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


class UnitOfWork:
    """What a worker sees: transactions on this service's database, nothing more."""

    def __init__(self, session_factory):
        self._session_factory = session_factory

    @property
    def engine(self):
        return self._session_factory.kw["bind"]

    @contextmanager
    def transaction(self):
        """A session whose changes commit when the block ends, or roll back on error.

        A database that cannot be reached or has no connection left (or a lock or
        serialization failure), like a pool with no connection free in time, is a
        passing fault: callers answer 503 and clients retry (with their idempotency
        keys), rather than an internal error they would not."""
        session = self._session_factory()
        try:
            with session.begin():
                yield session
        except (OperationalError, PoolTimeout) as error:
            cause = getattr(error, "orig", error)
            raise ServiceUnavailable(
                "The database did not answer; try again shortly.", fields={"database": type(cause).__name__},
            ) from error
        finally:
            session.close()

    def retry_on_conflict(self, work):
        """Run `work(session)` in a transaction, and once more if a concurrent call
        inserted the same unique key first. `work` must look its row up before
        inserting it, so the second run finds and answers with the other call's row."""
        try:
            with self.transaction() as session:
                return work(session)
        except IntegrityError:
            with self.transaction() as session:
                return work(session)


class Database(DependencyProvider):
    """nameko dependency giving workers a `UnitOfWork` on the URL named by `url_key`."""

    def __init__(self, url_key):
        self.url_key = url_key
        self.engine = None
        self.session_factory = None

    def setup(self):
        self.engine = make_engine(self.container.config[self.url_key])
        self.session_factory = sessionmaker(bind=self.engine, expire_on_commit=False)

    def stop(self):
        self.engine.dispose()

    kill = stop

    def get_dependency(self, worker_ctx):
        return UnitOfWork(self.session_factory)


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC datetime column on every backend.

    SQLite keeps no offset and hands back naive values; this type stores UTC and
    always returns aware UTC datetimes, and refuses naive ones on the way in.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: times are timezone-aware UTC")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)
