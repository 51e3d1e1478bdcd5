"""What docs/events.md promises about each event type, read from the page itself, so
tests hold the page and the bus to each other."""
import json
import re

from services.auth.service import EVENTS as AUTH_EVENTS
from services.billing.service import EVENTS as BILLING_EVENTS
from services.common.config import REPO_ROOT
from services.notifications.service import EVENTS as NOTIFICATIONS_EVENTS
from services.subscriptions.service import EVENTS as SUBSCRIPTIONS_EVENTS

EVENTS_PAGE = REPO_ROOT / "docs" / "events.md"
# Each service's published events, as its service module declares them.
CATALOGS = {
    "auth": AUTH_EVENTS, "subscriptions": SUBSCRIPTIONS_EVENTS,
    "billing": BILLING_EVENTS, "notifications": NOTIFICATIONS_EVENTS,
}
SECTION = re.compile(r"^### `(\w+)`$", re.MULTILINE)
FACTS = re.compile(
    r"Exchange `(?P<exchange>[\w.]+)`, routing key `(?P<routing_key>\w+)`, version (?P<version>\d+); "
    r"data: `(?P<schema>\w+)` in `(?P<module>[\w/.]+)`"
)
EXAMPLE = re.compile(r"```json\n(.*?)\n```", re.DOTALL)


def published_event_types():
    """type → (service, EventType) for every event any service publishes."""
    return {name: (service, event_type) for service, catalog in CATALOGS.items() for name, event_type in catalog.items()}


def documented_events():
    """type → {"exchange", "routing_key", "version", "schema", "module", "example"}."""
    text = EVENTS_PAGE.read_text()
    found = {}
    headings = list(SECTION.finditer(text))
    for heading, following in zip(headings, headings[1:] + [None]):
        section = text[heading.end():following.start() if following else len(text)]
        facts = FACTS.search(section)
        example = EXAMPLE.search(section)
        assert facts and example, f"docs/events.md: `{heading.group(1)}` lacks its facts line or example"
        found[heading.group(1)] = {**facts.groupdict(), "version": int(facts.group("version")),
                                   "example": json.loads(example.group(1))}
    return found
