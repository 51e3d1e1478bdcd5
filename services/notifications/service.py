"""notifications: sends e-mail at once over SMTP and keeps a log of what went out.

A login e-mail carries the buyer's link and code, so nothing of its body is kept:
the log row says to whom, which kind and what happened, and nothing usable.
"""
import smtplib
import uuid

from nameko.rpc import rpc
from sqlalchemy import select

from services.common import clock
from services.common.db import Database
from services.common.envelope import EventType, event_catalog
from services.common.errors import EXPECTED_ERRORS
from services.common.outbox import Outbox
from services.common.rpc import Pingable
from services.common.validation import load
from services.notifications import domain, emails
from services.notifications.models import DROPPED, FAILED, SENT, OutgoingEmail, outbox
from services.notifications.schemas import (
    EmailFailedSchema, EmailSentSchema, ListOutboxSchema, OutgoingEmailSchema,
    SendLoginEmailSchema, SendResultSchema,
)

EVENTS = event_catalog(
    EventType("email_sent", EmailSentSchema()),
    EventType("email_failed", EmailFailedSchema()),
)


class NotificationsService(Pingable):
    name = "notifications"

    db = Database("NOTIFICATIONS_DB_URL")
    events = Outbox("NOTIFICATIONS_DB_URL", outbox, EVENTS)
    mailer = emails.Mailer()

    @rpc(expected_exceptions=EXPECTED_ERRORS, sensitive_arguments=("link", "code"))
    def send_login_email(self, email, link, code, expires_at):
        """Send the login e-mail now, or drop it if the link has already expired.

        A delivery failure is an answer (`failed`), not an error: auth carries on.
        """
        payload = load(SendLoginEmailSchema(), {
            "email": email, "link": link, "code": code, "expires_at": expires_at,
        })
        now = clock.now()
        log_row = OutgoingEmail(
            id=str(uuid.uuid4()), kind=emails.LOGIN_LINK, recipient=payload["email"],
            subject=emails.LOGIN_SUBJECT, attempts=0, created_at=now,
        )
        if domain.login_email_expired(payload["expires_at"], now):
            log_row.status = DROPPED
            return self._keep(log_row)
        message = emails.login_email(
            self.mailer.sender, payload["email"], payload["link"], payload["code"],
            domain.minutes_left(payload["expires_at"], now), now,
        )
        log_row.attempts = 1
        try:
            self.mailer.send(message)
        except (smtplib.SMTPException, OSError) as error:
            log_row.status = FAILED
            log_row.last_error = domain.error_text(error, (payload["link"], payload["code"]))
        else:
            log_row.status = SENT
            log_row.sent_at = clock.now()
        return self._keep(log_row)

    def _keep(self, log_row):
        """Store the log row with its event; the caller's answer."""
        data = {"email_id": log_row.id, "kind": log_row.kind, "recipient": log_row.recipient}
        with self.db.transaction() as session:
            session.add(log_row)
            if log_row.status == SENT:
                self.events.record(session, "email_sent", None, data)
            elif log_row.status == FAILED:
                self.events.record(session, "email_failed", None, {**data, "error": log_row.last_error})
        return SendResultSchema().dump({"status": log_row.status, "email_id": log_row.id})

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def list_outbox(self, status=None, limit=50):
        """The newest outgoing e-mails (optionally of one status), without bodies."""
        payload = load(ListOutboxSchema(), {"status": status, "limit": limit})
        query = select(OutgoingEmail).order_by(OutgoingEmail.created_at.desc()).limit(payload["limit"])
        if payload["status"] is not None:
            query = query.where(OutgoingEmail.status == payload["status"])
        with self.db.transaction() as session:
            rows = session.scalars(query).all()
        return OutgoingEmailSchema(many=True).dump(rows)
