"""The tests publish to RabbitMQ only through `support.publishing.publish_confirmed`,
which waits for the broker's confirms (docs/events.md, "Publishing", says why). A
static scan of the test tree's source: any other call that publishes fails the test
with its file and line."""
import ast
import textwrap

import pytest

from services.common.config import REPO_ROOT

TESTS = REPO_ROOT / "tests"
HELPER = TESTS / "support" / "publishing.py"
# What publishes, by the name called: kombu's and pika's publish methods, and kombu's
# Producer (made only to publish). A plain `publish(...)` is a function of the tests,
# whose own body is scanned.
PUBLISHING_METHODS = {"publish", "basic_publish", "Producer"}
PUBLISHING_FUNCTIONS = {"basic_publish", "Producer"}
# nameko's own publishers confirm, unless told not to.
NAMEKO_PUBLISHERS = {"Publisher", "EventDispatcher", "event_dispatcher", "get_producer"}
CONFIRMS_OFF_KEYWORDS = {"use_confirms", "confirms"}


def confirms_turned_off(call):
    return any(keyword.arg in CONFIRMS_OFF_KEYWORDS and not (
        isinstance(keyword.value, ast.Constant) and keyword.value.value is True) for keyword in call.keywords)


def publishes_unconfirmed(call):
    if isinstance(call.func, ast.Attribute):
        name, publishing = call.func.attr, PUBLISHING_METHODS
    elif isinstance(call.func, ast.Name):
        name, publishing = call.func.id, PUBLISHING_FUNCTIONS
    else:
        return False
    return name in publishing or (name in NAMEKO_PUBLISHERS and confirms_turned_off(call))


def unconfirmed_publishers(source, filename):
    """`file:line: code` of every call in `source` that publishes without the helper."""
    return [f"{filename}:{node.lineno}: {ast.get_source_segment(source, node).splitlines()[0]}"
            for node in ast.walk(ast.parse(source, filename))
            if isinstance(node, ast.Call) and publishes_unconfirmed(node)]


def test_nothing_in_the_tests_publishes_but_the_confirming_helper():
    found = [line for path in sorted(TESTS.rglob("*.py")) if path != HELPER
             for line in unconfirmed_publishers(path.read_text(), str(path.relative_to(REPO_ROOT)))]
    assert not found, (
        "publish through support.publishing.publish_confirmed (it waits for the broker's confirms):\n"
        + "\n".join(found))


@pytest.mark.parametrize("code", [
    """
    with Connection(uri) as connection:
        Producer(connection.channel(), exchange=exchange).publish(body, routing_key="order_paid")
    """,
    "connection.Producer(exchange=exchange)",
    "channel.basic_publish('billing.events', 'order_paid', body)",
    "event_dispatcher(config, use_confirms=False)('billing', 'order_paid', body)",
    "Publisher(uri, use_confirms=confirms)",
])
def test_the_scan_finds_a_publisher_that_does_not_wait_for_confirms(code):
    assert unconfirmed_publishers(textwrap.dedent(code), "planted.py")


@pytest.mark.parametrize("code", [
    "publish_confirmed(uri, event_exchange('billing'), envelope)",
    "publish(uri, 'billing', envelope)",  # the tests' own function, scanned where defined
    "event_dispatcher(config)('billing', 'order_paid', body)",
    "Publisher(uri, use_confirms=True)",
    "relay.publish_pending()",
])
def test_the_scan_lets_confirmed_publishing_through(code):
    assert unconfirmed_publishers(code, "planted.py") == []
