"""Who may be answered, from the broker-checked `user_id` of a message."""
from services.common.callers import OPERATOR, caller_allowed
from services.common.events import from_its_source


def test_an_entrypoint_naming_its_callers_answers_them_and_its_own_user_only():
    assert caller_allowed("auth", {"auth"}, own_user="notifications")
    assert caller_allowed("guest", {"auth"}, own_user="guest")  # one shared user: nothing to tell apart
    assert not caller_allowed("gateway", {"auth"}, own_user="notifications")
    assert not caller_allowed(None, {"auth"}, own_user="notifications")  # named no one
    assert caller_allowed(None, None, own_user="notifications")  # open to any caller


def test_an_event_is_taken_from_its_source_exchange_or_from_the_operator_straight_to_its_queue():
    assert from_its_source("billing.events", "billing", "billing.events", own_user="subscriptions")
    assert from_its_source("", OPERATOR, "billing.events", own_user="subscriptions")
    assert not from_its_source("", "notifications", "billing.events", own_user="subscriptions")
    assert not from_its_source("portal.unrouted", "billing", "billing.events", own_user="subscriptions")
