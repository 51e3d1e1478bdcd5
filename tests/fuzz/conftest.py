import pytest

from support.system import RunningSystem


@pytest.fixture(scope="session")
def fuzz_system(tmp_path_factory):
    """The whole portal as `make run` starts it, on PostgreSQL (one database per service)."""
    running = RunningSystem(tmp_path_factory.mktemp("fuzz-system"), database_backend="postgresql")
    try:
        yield running.start()
    finally:
        running.stop()
