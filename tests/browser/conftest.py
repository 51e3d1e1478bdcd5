import os

import pytest
from playwright.sync_api import sync_playwright

from support.browser import ARTIFACTS, launch
from support.system import RunningSystem


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    """One whole portal per module, started as `make run` starts it."""
    running = RunningSystem(
        tmp_path_factory.mktemp("system"), database_backend=os.environ.get("PORTAL_TEST_DATABASE", "sqlite"),
    )
    try:
        yield running.start()
    finally:
        running.stop()


@pytest.fixture(scope="session")
def chromium():
    with sync_playwright() as playwright:
        browser = launch(playwright.chromium)
        try:
            yield browser
        finally:
            browser.close()


def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line(f"screenshots of every page: {ARTIFACTS}")
