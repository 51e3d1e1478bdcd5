"""notifications' entrypoints, without a broker."""
from nameko.events import EventHandler
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR

from services.notifications import domain
from services.notifications.service import NotificationsService


def handled_events():
    return {
        (entrypoint.source_service, entrypoint.event_type)
        for method in vars(NotificationsService).values()
        for entrypoint in getattr(method, ENTRYPOINT_EXTENSIONS_ATTR, ())
        if isinstance(entrypoint, EventHandler)
    }


def test_every_event_a_merchant_may_subscribe_to_has_a_handler_and_no_other():
    expected = {(source, event_type) for source, types in domain.WEBHOOK_EVENTS.items() for event_type in types}
    # Besides those, the one e-mailed to the merchant's owners only.
    assert handled_events() == expected | {("billing", "processor_account_changed")}


def test_every_event_that_calls_for_an_e_mail_is_handled():
    handled = {event_type for _, event_type in handled_events()}
    assert set(domain.SUBSCRIPTION_EMAILS) <= handled
    assert {"order_created", "order_paid", "charge_failed"} <= handled
