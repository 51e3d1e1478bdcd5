import pytest

from support.system import RunningSystem


@pytest.fixture(scope="module")
def fuzz_system(tmp_path_factory):
    """The whole portal as `make run` starts it, on PostgreSQL (one database per service);
    stopped after its module, so the suite never has more systems up than it needs."""
    running = RunningSystem(tmp_path_factory.mktemp("fuzz-system"), database_backend="postgresql")
    try:
        yield running.start()
    finally:
        running.stop()
