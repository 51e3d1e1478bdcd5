"""The unit of work: a database that does not answer is a passing fault (503), not an
internal error. Lock keys are the same in every process."""
import os
import subprocess
import sys

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import sessionmaker

from services.common.config import REPO_ROOT
from services.common.db import UnitOfWork, advisory_key
from services.common.errors import ServiceUnavailable
from services.common.web import error_response
from support.ports import free_port


def test_a_database_that_refuses_connections_is_service_unavailable():
    closed = f"postgresql+psycopg2://postgres@127.0.0.1:{free_port()}/nothing"
    unit = UnitOfWork(sessionmaker(bind=create_engine(closed, connect_args={"connect_timeout": 2})))

    with pytest.raises(ServiceUnavailable) as refused:
        with unit.transaction() as session:
            session.execute(text("SELECT 1"))

    assert refused.value.fields == {"database": "OperationalError"}
    assert error_response(refused.value).status_code == 503


def test_a_pool_with_no_connection_free_in_time_is_service_unavailable(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'one.db'}", pool_size=1, max_overflow=0, pool_timeout=0.1)
    unit = UnitOfWork(sessionmaker(bind=engine))

    with engine.connect() as busy:
        busy.execute(text("SELECT 1"))
        with pytest.raises(ServiceUnavailable) as refused:
            with unit.transaction() as session:
                session.execute(text("SELECT 1"))

    assert refused.value.fields == {"database": "TimeoutError"}
    assert error_response(refused.value).status_code == 503


def test_an_advisory_key_is_the_same_in_every_process_and_fits_postgresqls_bigint():
    name = "auth:login-requests-for:ana@example.com"
    other_process = subprocess.run(
        [sys.executable, "-c", f"from services.common.db import advisory_key; print(advisory_key({name!r}))"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=True, env={**os.environ, "PYTHONHASHSEED": "random"},
    )

    assert int(other_process.stdout) == advisory_key(name)
    assert -2 ** 63 <= advisory_key(name) < 2 ** 63
    assert advisory_key("auth:login-requests-from:ana@example.com") != advisory_key(name)
