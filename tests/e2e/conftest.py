import os

import pytest

from support.system import RunningSystem


@pytest.fixture(scope="session")
def system(tmp_path_factory):
    running = RunningSystem(
        tmp_path_factory.mktemp("system"),
        database_backend=os.environ.get("PORTAL_TEST_DATABASE", "sqlite"),
    )
    try:
        yield running.start()
    finally:
        running.stop()
