"""The unit of work: a database that does not answer is a passing fault (503), not an
internal error."""
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import sessionmaker

from services.common.db import UnitOfWork
from services.common.errors import ServiceUnavailable
from services.common.web import error_response
from support.system import free_port


def test_a_database_that_refuses_connections_is_service_unavailable():
    closed = f"postgresql+psycopg2://postgres@127.0.0.1:{free_port()}/nothing"
    unit = UnitOfWork(sessionmaker(bind=create_engine(closed, connect_args={"connect_timeout": 2})))

    with pytest.raises(ServiceUnavailable) as refused:
        with unit.transaction() as session:
            session.execute(text("SELECT 1"))

    assert refused.value.fields == {"database": "OperationalError"}
    assert error_response(refused.value).status_code == 503
