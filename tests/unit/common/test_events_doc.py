"""docs/events.md documents every event type the services publish, and nothing else,
with the exchange, routing key, version and schema the code uses, and an example
that loads with that schema: the page cannot drift from the code."""
import pytest

from services.common.envelope import EnvelopeSchema
from support.event_docs import documented_events, published_event_types


def test_every_published_type_is_documented_and_nothing_else():
    assert set(documented_events()) == set(published_event_types())


@pytest.mark.parametrize("name", sorted(published_event_types()))
def test_each_type_is_documented_as_published(name):
    service, event_type = published_event_types()[name]
    documented = documented_events()[name]
    assert documented["exchange"] == f"{service}.events"
    assert documented["routing_key"] == name
    assert documented["version"] == event_type.version
    assert documented["schema"] == type(event_type.data_schema).__name__
    assert documented["module"] == f"services/{service}/schemas.py"
    assert type(event_type.data_schema).__module__ == f"services.{service}.schemas"


@pytest.mark.parametrize("name", sorted(published_event_types()))
def test_each_example_loads_with_its_schema_and_shows_every_field(name):
    _service, event_type = published_event_types()[name]
    example = documented_events()[name]["example"]
    assert EnvelopeSchema().validate(example) == {}
    assert (example["type"], example["version"]) == (name, event_type.version)
    # Unknown keys are refused, and every field is shown: the example is the whole data.
    assert event_type.data_schema.validate(example["data"]) == {}
    assert set(example["data"]) == set(event_type.data_schema.fields)

