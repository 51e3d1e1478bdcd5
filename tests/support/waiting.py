"""Waiting in tests for what happens in another process or green thread."""
import eventlet


def wait_until(condition, timeout=30, interval=0.05, message="condition"):
    """The first true value of `condition()`, asked every `interval` seconds; an
    AssertionError after `timeout`. `message` may be a function, asked at the timeout
    to tell the state then."""
    deadline = eventlet.hubs.get_hub().clock() + timeout
    while True:
        value = condition()
        if value:
            return value
        if eventlet.hubs.get_hub().clock() > deadline:
            raise AssertionError(f"timed out waiting for {message() if callable(message) else message}")
        eventlet.sleep(interval)
