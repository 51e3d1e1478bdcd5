"""Sending what is due: stored e-mails over SMTP, webhook deliveries over HTTP, and
login e-mails that wait in this process's memory for the mail server to come back.

Each row is claimed before it is sent and marked (with its event) right after the
server answered, so a sender that dies leaves at most the message in flight to be
sent again, with the same Message-ID (or the same event id, for a webhook).
"""
import logging
import smtplib
from dataclasses import dataclass
from datetime import datetime, timedelta

import eventlet
import requests
from nameko.extensions import DependencyProvider

from services.common import clock
from services.notifications import domain, emails, outbound, store
from services.notifications.models import FAILED, QUEUED, SENT

log = logging.getLogger(__name__)

EMAIL_BATCH_SIZE = 20
WEBHOOK_BATCH_SIZE = 50
# Batches per tick: a backlog is worked through without one worker running for ever.
MAX_BATCHES_PER_TICK = 10
USER_AGENT = "PortalDoCliente-Webhooks/1"

SMTP_ERRORS = (smtplib.SMTPException, OSError)


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float
    max_delay_seconds: float
    window_seconds: float

    def retry_until(self, now):
        return now + timedelta(seconds=self.window_seconds)

    def next_attempt_at(self, now, attempts, retry_until):
        """When to try again, or None to give up."""
        return domain.next_attempt_at(now, attempts, retry_until, self.base_seconds, self.max_delay_seconds)


@dataclass(frozen=True)
class DeliverySettings:
    mail: RetryPolicy
    webhooks: RetryPolicy
    # How long a claimed row stays with its sender before another may take it.
    lease: timedelta
    webhook_timeout: float
    webhook_concurrency: int
    # Where webhooks may go, checked when a URL is saved and again at every POST.
    webhook_destinations: outbound.Destinations
    login_retry_seconds: float


def settings_from(config):
    def number(key, default):
        return float(config.get(key, default))

    return DeliverySettings(
        mail=RetryPolicy(
            number("MAIL_RETRY_BASE_SECONDS", 30), number("MAIL_RETRY_MAX_DELAY_SECONDS", 3600),
            number("MAIL_RETRY_WINDOW_SECONDS", 86400),
        ),
        webhooks=RetryPolicy(
            number("WEBHOOK_RETRY_BASE_SECONDS", 30), number("WEBHOOK_RETRY_MAX_DELAY_SECONDS", 3600),
            number("WEBHOOK_RETRY_WINDOW_SECONDS", 86400),
        ),
        lease=timedelta(seconds=number("DELIVERY_LEASE_SECONDS", 120)),
        webhook_timeout=number("WEBHOOK_TIMEOUT", 10),
        webhook_concurrency=int(number("WEBHOOK_CONCURRENCY", 10)),
        webhook_destinations=outbound.Destinations.from_config(config),
        login_retry_seconds=number("LOGIN_EMAIL_RETRY_SECONDS", 10),
    )


class Settings(DependencyProvider):
    """nameko dependency: the `DeliverySettings` read from config."""

    def setup(self):
        self.settings = settings_from(self.container.config)

    def get_dependency(self, worker_ctx):
        return self.settings


def email_event_data(row):
    return {"email_id": row.id, "kind": row.kind, "recipient": row.recipient}


# -- stored e-mails

def send_due_emails(db, mailer, events, settings):
    """Send the e-mails that are due; how many were attempted."""
    attempted = 0
    for _ in range(MAX_BATCHES_PER_TICK):
        with db.transaction() as session:
            rows = store.claim_due_emails(session, clock.now(), settings.lease, EMAIL_BATCH_SIZE)
        _send_batch(db, mailer, events, settings.mail, rows)
        attempted += len(rows)
        if len(rows) < EMAIL_BATCH_SIZE:
            break
    return attempted


def _send_batch(db, mailer, events, policy, rows):
    """One SMTP connection for the batch; each e-mail is marked as soon as it is answered."""
    smtp = None
    try:
        for position, row in enumerate(rows):
            try:
                if smtp is None:
                    smtp = mailer.connect()
                smtp.send_message(emails.stored_email(mailer.sender, row, clock.now()))
            except SMTP_ERRORS as error:
                if smtp is None:
                    # The server cannot be reached: the rest of the batch would only wait too.
                    for unsent in rows[position:]:
                        _email_not_sent(db, events, policy, unsent, error)
                    return
                _close(smtp)
                smtp = None
                _email_not_sent(db, events, policy, row, error)
            else:
                _email_sent(db, events, row)
    finally:
        if smtp is not None:
            _close(smtp)


def _close(smtp):
    try:
        smtp.quit()
    except SMTP_ERRORS:
        smtp.close()


def _email_sent(db, events, row):
    with db.transaction() as session:
        if store.email_sent(session, row.id, clock.now()) is not None:
            events.record(session, "email_sent", row.merchant_id, email_event_data(row))


def _email_not_sent(db, events, policy, row, error):
    now = clock.now()
    text = domain.error_text(error)
    retry_at = None if domain.smtp_failure_is_permanent(error) else policy.next_attempt_at(
        now, row.attempts, row.retry_until,
    )
    with db.transaction() as session:
        if retry_at is not None:
            store.email_retry_at(session, row.id, retry_at, text)
        elif store.email_failed(session, row.id, text) is not None:
            events.record(session, "email_failed", row.merchant_id, {**email_event_data(row), "error": text})
    log.warning("e-mail %s (%s) not sent: %s", row.id, row.kind, text)


# -- login e-mails: sent at once, retried from memory only until the link expires

@dataclass
class PendingLogin:
    message: object
    expires_at: datetime
    secrets: tuple
    next_attempt_at: datetime


class PendingLogins(DependencyProvider):
    """Login e-mails this process is still trying to send. They carry a usable link,
    so they live in memory only, and only until sent or expired."""

    def setup(self):
        self.pending = {}

    def get_dependency(self, worker_ctx):
        return self.pending


def send_login_email(db, mailer, events, pending, settings, log_row, message, expires_at, secrets):
    """First attempt, at once; a transient failure leaves it to `retry_login_emails`."""
    log_row.attempts = 1
    try:
        mailer.send(message)
    except SMTP_ERRORS as error:
        log_row.last_error = domain.error_text(error, secrets)
        if domain.smtp_failure_is_permanent(error):
            log_row.status = FAILED
        else:
            log_row.status = QUEUED
            log_row.next_attempt_at = clock.now() + timedelta(seconds=settings.login_retry_seconds)
    else:
        log_row.status = SENT
        log_row.sent_at = clock.now()
    keep_login_row(db, events, log_row)
    if log_row.status == QUEUED:
        pending[log_row.id] = PendingLogin(message, expires_at, secrets, log_row.next_attempt_at)
    return log_row


def keep_login_row(db, events, log_row):
    with db.transaction() as session:
        session.add(log_row)
        if log_row.status == SENT:
            events.record(session, "email_sent", None, email_event_data(log_row))
        elif log_row.status == FAILED:
            events.record(session, "email_failed", None, {**email_event_data(log_row), "error": log_row.last_error})


def retry_login_emails(db, mailer, events, pending, settings):
    """Try the waiting login e-mails again; drop those whose link has expired."""
    for email_id, login in list(pending.items()):
        now = clock.now()
        if domain.login_email_expired(login.expires_at, now):
            del pending[email_id]
            _login_row_dropped(db, email_id)
            continue
        if now < login.next_attempt_at:
            continue
        try:
            mailer.send(login.message)
        except SMTP_ERRORS as error:
            permanent = domain.smtp_failure_is_permanent(error)
            if permanent:
                del pending[email_id]
            else:
                login.next_attempt_at = clock.now() + timedelta(seconds=settings.login_retry_seconds)
            _login_row_attempted(db, events, email_id, FAILED if permanent else QUEUED,
                                 domain.error_text(error, login.secrets))
        else:
            del pending[email_id]
            _login_row_attempted(db, events, email_id, SENT, None)
    # Rows a process that died was retrying: their message is gone with it.
    with db.transaction() as session:
        store.drop_stale_login_emails(session, clock.now() - settings.lease)


def _login_row_dropped(db, email_id):
    with db.transaction() as session:
        store.login_email_dropped(session, email_id)


def _login_row_attempted(db, events, email_id, status, error):
    with db.transaction() as session:
        row = store.login_email_attempted(session, email_id, status, error, clock.now())
        if row is None or status == QUEUED:
            return
        if status == SENT:
            events.record(session, "email_sent", None, email_event_data(row))
        else:
            events.record(session, "email_failed", None, {**email_event_data(row), "error": error})


# -- webhooks

def deliver_due_webhooks(db, events, settings):
    """POST the deliveries that are due, several at a time; how many were attempted."""
    attempted = 0
    pool = eventlet.GreenPool(settings.webhook_concurrency)
    for _ in range(MAX_BATCHES_PER_TICK):
        with db.transaction() as session:
            jobs = [
                (delivery, store.endpoint_url(session, delivery.endpoint_id), store.merchant_secret(session, delivery.merchant_id))
                for delivery in store.claim_due_deliveries(session, clock.now(), settings.lease, WEBHOOK_BATCH_SIZE)
            ]
        for delivery, url, secret in jobs:
            pool.spawn_n(_deliver, db, events, settings, delivery, url, secret)
        pool.waitall()
        attempted += len(jobs)
        if len(jobs) < WEBHOOK_BATCH_SIZE:
            break
    return attempted


def _deliver(db, events, settings, delivery, url, secret):
    status_code, error, may_retry = post_webhook(
        url, secret, delivery, settings.webhook_timeout, settings.webhook_destinations,
    )
    now = clock.now()
    with db.transaction() as session:
        current = store.record_attempt(session, delivery.id, now, status_code, error)
        if current is None:
            return
        if error is None:
            store.delivered(current, now)
            return
        # A refused destination stays refused: it fails at once instead of for 24 h.
        retry_at = settings.webhooks.next_attempt_at(now, current.attempts, current.retry_until) if may_retry else None
        if retry_at is not None:
            store.delivery_retry_at(current, retry_at)
            return
        store.delivery_failed(current)
        events.record(session, "webhook_failed", current.merchant_id, {
            "delivery_id": current.id, "event_id": current.event_id, "event_type": current.event_type,
            "url": url, "attempts": current.attempts, "last_status_code": status_code, "last_error": error,
        })


def post_webhook(url, secret, delivery, timeout, destinations):
    """POST the delivery's body, signed, where `destinations` allows; (status code or
    None, error text or None, whether trying again may help)."""
    body = delivery.body.encode("utf-8")
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        domain.SIGNATURE_HEADER: domain.signature(secret, int(clock.now().timestamp()), body),
        "X-Portal-Event-Id": delivery.event_id,
        "X-Portal-Event-Type": delivery.event_type,
    }
    try:
        # One deadline for the whole attempt, however slowly the server answers.
        with eventlet.Timeout(timeout), outbound.session(destinations) as session:
            with session.post(
                url, data=body, headers=headers, timeout=timeout, allow_redirects=False, stream=True,
            ) as response:
                status_code = response.status_code
    except eventlet.Timeout:
        return None, f"no answer in {timeout:g} s", True
    except outbound.DestinationRefused as refused:
        return None, domain.error_text(refused), False
    except requests.RequestException as error:
        return None, domain.error_text(error), True
    if domain.webhook_answer_ok(status_code):
        return status_code, None, True
    return status_code, f"HTTP {status_code}", True
