"""notifications: the e-mails buyers expect and the webhooks merchants need.

Events from subscriptions and billing become stored e-mails and webhook deliveries in
the same transaction that marks the event done in the inbox, before the broker hears
that the message was handled: a crash redelivers the event, and the inbox makes the
second delivery a no-op. Timers then send what is due, with retries.

A login e-mail carries the buyer's link and code, so it is sent at once and nothing
of its body is kept: its log row says to whom, which kind and what happened.
"""
import logging
import uuid

from nameko.dependency_providers import Config

from services.common import clock
from services.common.db import Database
from services.common.envelope import EventType, event_catalog
from services.common.errors import EXPECTED_ERRORS, NotFound, RuleRefused, ValidationFailed
from services.common.events import event_handler, first_delivery
from services.common.outbox import Outbox
from services.common.callers import OPERATOR
from services.common.rpc import Pingable, TimedRpc, rpc
from services.common.timer import timer
from services.common.validation import load
from services.notifications import delivery, domain, emails, store
from services.notifications.models import DROPPED, OutgoingEmail, inbox, outbox
from services.notifications.outbound import DestinationRefused
from services.notifications.schemas import (
    DeliveriesPageSchema, EmailFailedSchema, EmailSentSchema, IncomingEventSchema, ListDeliveriesSchema, ListOutboxSchema,
    MerchantIdSchema, OutgoingEmailSchema, SendLoginEmailSchema, SendResultSchema, WebhookDeliverySchema,
    WebhookFailedSchema, WebhookSettingsInputSchema, WebhookSettingsSchema,
)

log = logging.getLogger(__name__)

EVENTS = event_catalog(
    EventType("email_sent", EmailSentSchema()),
    EventType("email_failed", EmailFailedSchema()),
    EventType("webhook_failed", WebhookFailedSchema()),
)
# Who notifications is when it asks the owning services about a buyer's subscription
# or order (they filter by the buyer's e-mail and merchant, as for the buyer).
SESSION_ID = "notifications"

INCOMING_EVENT = IncomingEventSchema()
OUTGOING_EMAIL = OutgoingEmailSchema()
WEBHOOK_SETTINGS = WebhookSettingsSchema()
WEBHOOK_DELIVERY = WebhookDeliverySchema()
DELIVERIES_PAGE = DeliveriesPageSchema()


class NotificationsService(Pingable):
    name = "notifications"

    config = Config()
    db = Database("NOTIFICATIONS_DB_URL")
    events = Outbox("NOTIFICATIONS_DB_URL", outbox, EVENTS)
    mailer = emails.Mailer()
    settings = delivery.Settings()
    pending_logins = delivery.PendingLogins()
    subscriptions = TimedRpc("subscriptions")
    billing = TimedRpc("billing")

    # -- login e-mail (a command from auth)

    # Only auth asks for a login e-mail: a link in it is a key to a buyer's account.
    @rpc(expected_exceptions=EXPECTED_ERRORS, sensitive_arguments=("link", "code"), callers=("auth",))
    def send_login_email(self, email, link, code, expires_at):
        """Send the login e-mail now; if the mail server is away, keep trying from
        memory until the link expires. Answers `sent`, `queued` (still trying),
        `dropped` (expired) or `failed` (refused for good): never an error for auth.
        """
        payload = load(SendLoginEmailSchema(self.config["PORTAL_BASE_URL"]), {
            "email": email, "link": link, "code": code, "expires_at": expires_at,
        })
        now = clock.now()
        log_row = OutgoingEmail(
            id=str(uuid.uuid4()), kind=emails.LOGIN_LINK, recipient=payload["email"],
            subject=emails.LOGIN_SUBJECT, attempts=0, created_at=now, retry_until=payload["expires_at"],
        )
        if domain.login_email_expired(payload["expires_at"], now):
            log_row.status = DROPPED
            delivery.keep_login_row(self.db, self.events, log_row)
        else:
            message = emails.login_email(
                self.mailer.sender, payload["email"], payload["link"], payload["code"],
                domain.minutes_left(payload["expires_at"], now), now,
            )
            delivery.send_login_email(
                self.db, self.mailer, self.events, self.pending_logins, self.settings, log_row, message,
                payload["expires_at"], (payload["link"], payload["code"]),
            )
        return SendResultSchema().dump({"status": log_row.status, "email_id": log_row.id})

    # -- ops

    @rpc(expected_exceptions=EXPECTED_ERRORS, callers=(OPERATOR,))
    def list_outbox(self, status=None, limit=50):
        """The newest outgoing e-mails (optionally of one status), without bodies."""
        payload = load(ListOutboxSchema(), {"status": status, "limit": limit})
        with self.db.transaction() as session:
            return OUTGOING_EMAIL.dump(store.list_emails(session, payload["status"], payload["limit"]), many=True)

    @rpc(expected_exceptions=EXPECTED_ERRORS, callers=(OPERATOR,))
    def retry(self, email_id):
        """Send a failed e-mail again (a new retry window); login e-mails cannot be."""
        if not isinstance(email_id, str):
            raise NotFound("E-mail not found.")
        now = clock.now()
        with self.db.transaction() as session:
            row = store.retry_email(session, email_id, now, self.settings.mail.retry_until(now))
            return OUTGOING_EMAIL.dump(row)

    @rpc(expected_exceptions=EXPECTED_ERRORS, callers=(OPERATOR,))
    def list_webhook_deliveries(self, merchant_id=None, limit=50):
        """The newest webhook deliveries (of one merchant, or all), each with its log."""
        payload = load(ListDeliveriesSchema(), {"merchant_id": merchant_id, "limit": limit})
        with self.db.transaction() as session:
            deliveries, _ = store.deliveries_page(session, payload["merchant_id"], payload["limit"])
            return WEBHOOK_DELIVERY.dump(deliveries, many=True)

    @rpc(expected_exceptions=EXPECTED_ERRORS, callers=(OPERATOR,))
    def replay_webhook(self, delivery_id):
        """Deliver a finished (delivered or failed) webhook again, with a new window;
        the delivery itself checks its address, as every delivery does."""
        return self._replay(None, delivery_id)

    def _replay(self, merchant_id, delivery_id):
        now = clock.now()
        with self.db.transaction() as session:
            delivery = store.merchant_delivery(session, merchant_id, delivery_id)
            replayed = store.replay_delivery(session, delivery, now, self.settings.webhooks.retry_until(now))
            return WEBHOOK_DELIVERY.dump(replayed)

    # -- a merchant's own delivery log (the gateway calls these for the merchant's API key)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def list_merchant_deliveries(self, merchant_id, cursor=None, limit=50, status=None, event_type=None):
        """A page of the merchant's deliveries, newest first, each with its attempts."""
        page = load(DELIVERIES_PAGE, {"merchant_id": merchant_id, "cursor": cursor, "limit": limit,
                                      "status": status, "event_type": event_type})
        with self.db.transaction() as session:
            deliveries, next_cursor = store.deliveries_page(
                session, page["merchant_id"], page["limit"], page["cursor"], page["status"], page["event_type"])
            return {"deliveries": WEBHOOK_DELIVERY.dump(deliveries, many=True), "next_cursor": next_cursor}

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def replay_merchant_delivery(self, merchant_id, delivery_id):
        """One of the merchant's deliveries again. Its endpoint's address is checked now
        as the delivery will check it (outbound.Destinations): one the portal would not
        POST to is refused here, naming `url`, instead of failing later unseen."""
        merchant_id = load(MerchantIdSchema(), {"merchant_id": merchant_id})["merchant_id"]
        with self.db.transaction() as session:
            url = store.endpoint_url(session, store.merchant_delivery(session, merchant_id, delivery_id).endpoint_id)
        try:
            self.settings.webhook_destinations.check_url(url)
        except DestinationRefused as refused:
            raise RuleRefused(f"Not replayed: {refused}.", code="destination_refused", fields={"url": [str(refused)]})
        return self._replay(merchant_id, delivery_id)

    # -- merchant webhook settings (the gateway calls these for the merchant's API key)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def get_webhook_settings(self, merchant_id):
        merchant_id = load(MerchantIdSchema(), {"merchant_id": merchant_id})["merchant_id"]
        with self.db.transaction() as session:
            return WEBHOOK_SETTINGS.dump(store.webhook_settings(session, merchant_id))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def put_webhook_settings(self, merchant_id, settings):
        """Replace the merchant's endpoints; the signing secret is made on the first put.
        A URL that could reach the portal's own network is refused (`endpoints.<i>.url`)."""
        merchant_id = load(MerchantIdSchema(), {"merchant_id": merchant_id})["merchant_id"]
        payload = load(WebhookSettingsInputSchema(destinations=self.settings.webhook_destinations), settings)
        return self.db.retry_on_conflict(lambda session: WEBHOOK_SETTINGS.dump(store.put_webhook_settings(
            session, merchant_id, payload["endpoints"], payload["rotate_secret"], clock.now(),
        )))

    # -- senders

    @timer("DELIVERY_POLL_INTERVAL", 1)
    def send_due_emails(self):
        delivery.retry_login_emails(self.db, self.mailer, self.events, self.pending_logins, self.settings)
        return delivery.send_due_emails(self.db, self.mailer, self.events, self.settings)

    @timer("DELIVERY_POLL_INTERVAL", 1)
    def deliver_due_webhooks(self):
        return delivery.deliver_due_webhooks(self.db, self.events, self.settings)

    # -- events: one handler (and queue) per event type

    @event_handler("subscriptions", "subscription_created")
    def on_subscription_created(self, envelope):
        self._notify(envelope)

    @event_handler("subscriptions", "subscription_plan_changed")
    def on_subscription_plan_changed(self, envelope):
        self._notify(envelope)

    @event_handler("subscriptions", "subscription_plan_change_scheduled")
    def on_subscription_plan_change_scheduled(self, envelope):
        self._notify(envelope)

    @event_handler("subscriptions", "subscription_plan_change_dropped")
    def on_subscription_plan_change_dropped(self, envelope):
        self._notify(envelope)

    @event_handler("subscriptions", "subscription_payment_method_changed")
    def on_subscription_payment_method_changed(self, envelope):
        self._notify(envelope)

    @event_handler("subscriptions", "subscription_cancellation_scheduled")
    def on_subscription_cancellation_scheduled(self, envelope):
        self._notify(envelope)

    @event_handler("subscriptions", "subscription_cancellation_undone")
    def on_subscription_cancellation_undone(self, envelope):
        self._notify(envelope)

    @event_handler("subscriptions", "subscription_canceled")
    def on_subscription_canceled(self, envelope):
        self._notify(envelope)

    @event_handler("subscriptions", "subscription_renewed")
    def on_subscription_renewed(self, envelope):
        self._notify(envelope)

    @event_handler("subscriptions", "subscription_past_due")
    def on_subscription_past_due(self, envelope):
        self._notify(envelope)

    @event_handler("subscriptions", "subscription_payment_not_applied")
    def on_subscription_payment_not_applied(self, envelope):
        self._notify(envelope)

    @event_handler("billing", "order_created")
    def on_order_created(self, envelope):
        self._notify(envelope)

    @event_handler("billing", "order_awaiting_payment")
    def on_order_awaiting_payment(self, envelope):
        self._notify(envelope)

    @event_handler("billing", "order_paid")
    def on_order_paid(self, envelope):
        self._notify(envelope)

    @event_handler("billing", "charge_failed")
    def on_charge_failed(self, envelope):
        self._notify(envelope)

    @event_handler("billing", "order_refunded")
    def on_order_refunded(self, envelope):
        self._notify(envelope)

    @event_handler("billing", "refund_failed")
    def on_refund_failed(self, envelope):
        self._notify(envelope)

    @event_handler("billing", "processor_account_changed")
    def on_processor_account_changed(self, envelope):
        """One e-mail to the merchant's owners the account names (never a secret: the
        event carries the API key's last four only)."""
        event = load(INCOMING_EVENT, envelope)
        owners = [email for email in event["data"].get("notify") or [] if isinstance(email, str)]
        if not owners:
            log.warning("processor_account_changed %s names no owner: no e-mail written", event["event_id"])
            return
        try:
            merchant = self.subscriptions.get_merchant(event["merchant_id"])
        except NotFound:
            merchant = None  # an account set before its merchant: the e-mail names the id
        facts = domain.account_change_facts(event, merchant, self.config["PORTAL_BASE_URL"])
        rendered = emails.render(domain.PROCESSOR_ACCOUNT_CHANGED, domain.DEFAULT_LOCALE, facts)
        now = clock.now()
        with self.db.transaction() as session:
            if not first_delivery(session, inbox, event["event_id"], f"notify:{event['type']}"):
                return
            store.queue_email(
                session, event_id=event["event_id"], kind=domain.PROCESSOR_ACCOUNT_CHANGED,
                merchant_id=event["merchant_id"], recipient=", ".join(owners), locale=domain.DEFAULT_LOCALE,
                rendered=rendered, message_id=emails.new_message_id(self.mailer.sender), now=now,
                retry_until=self.settings.mail.retry_until(now),
            )

    def _notify(self, envelope):
        """The event's e-mails and webhook deliveries, stored once whatever the redeliveries."""
        event = load(INCOMING_EVENT, envelope)
        kinds = domain.email_kinds(event["type"], event["data"])
        written = self._write_emails(event, kinds) if kinds else []
        now = clock.now()
        with self.db.transaction() as session:
            endpoints = store.endpoints_wanting(session, envelope)
            # Most events (a renewal's order_created and order_paid, without webhooks)
            # call for nothing: no inbox row, no write, nothing that could happen twice.
            if not written and not endpoints:
                return
            if not first_delivery(session, inbox, event["event_id"], f"notify:{event['type']}"):
                return
            for kind, recipient, locale, rendered in written:
                store.queue_email(
                    session, event_id=event["event_id"], kind=kind, merchant_id=event["merchant_id"],
                    recipient=recipient, locale=locale, rendered=rendered,
                    message_id=emails.new_message_id(self.mailer.sender), now=now,
                    retry_until=self.settings.mail.retry_until(now),
                )
            store.queue_deliveries(session, envelope, endpoints, now, self.settings.webhooks.retry_until(now))

    def _write_emails(self, event, kinds):
        """Render the event's e-mails with what the owning services say about it.

        A service that does not answer raises, so the event is tried again later; one
        that says "not found" leaves the e-mail unwritten (logged), never half-written.
        """
        data, merchant_id = event["data"], event["merchant_id"]
        recipient = data.get("email")
        if not recipient:
            log.warning("%s %s names no buyer e-mail: no e-mail written", event["type"], event["event_id"])
            return []
        identity = {"email": recipient, "merchant_id": merchant_id, "session_id": SESSION_ID}
        subscription_id = data.get("subscription_id")
        order_code = data.get("order_code") or data.get("code")
        calls = {
            "subscription": subscription_id and self.subscriptions.get_subscription.call_async(identity, subscription_id),
            "order": order_code and self.billing.get_order.call_async(identity, order_code),
        }
        # A subscription's answer names its merchant: the merchant is asked for only without one.
        calls["merchant"] = merchant_id and not calls["subscription"] and self.subscriptions.get_merchant.call_async(
            merchant_id)
        try:
            answers = {name: call.result() if call else None for name, call in calls.items()}
        except (NotFound, ValidationFailed) as refused:
            log.warning("%s %s: %s; no e-mail written", event["type"], event["event_id"], refused)
            return []
        facts = domain.email_facts(event, portal_base_url=self.config["PORTAL_BASE_URL"], **answers)
        locale = domain.email_locale(data, answers["subscription"], answers["order"])
        return [(kind, recipient, locale, emails.render(kind, locale, facts)) for kind in kinds]
