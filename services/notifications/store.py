"""notifications' reads and writes: the e-mail queue, webhook settings and deliveries.

Senders claim due rows before working on them: a claim marks the row as in progress
until a lease ends, so replicas never take the same row, and a row whose sender died
mid-way is taken again once its lease is over.
"""
import json
import secrets
import uuid

from sqlalchemy import and_, or_, select, update

from services.common.db import is_postgres
from services.common.errors import NotFound, RuleRefused, ValidationFailed
from services.notifications import domain
from services.notifications.models import (
    DELIVERED, DELIVERING, DROPPED, FAILED, PENDING, QUEUED, SENDING, SENT, OutgoingEmail, WebhookAttempt,
    WebhookDelivery, WebhookEndpoint, WebhookSettings,
)

WEBHOOK_SECRET_BYTES = 32


# -- e-mail

def queue_email(session, *, event_id, kind, merchant_id, recipient, locale, rendered, message_id, now, retry_until):
    """Store an event's e-mail, once per (event, kind); the row, new or already there."""
    existing = session.scalar(select(OutgoingEmail).where(
        OutgoingEmail.event_id == event_id, OutgoingEmail.kind == kind,
    ))
    if existing is not None:
        return existing
    row = OutgoingEmail(
        id=str(uuid.uuid4()), kind=kind, recipient=recipient, subject=rendered.subject,
        status=QUEUED, attempts=0, created_at=now, event_id=event_id, merchant_id=merchant_id,
        locale=locale, message_id=message_id, text_body=rendered.text, html_body=rendered.html,
        inline_qr_codes=rendered.inline_qr_codes or None,
        next_attempt_at=now, retry_until=retry_until,
    )
    session.add(row)
    return row


def _claim(session, model, waiting, in_progress, now, lease, limit, *conditions):
    """Take up to `limit` due rows of `model`: waiting ones whose time has come, and
    in-progress ones whose sender's lease ran out (it died)."""
    due = or_(
        and_(model.status == waiting, model.next_attempt_at <= now),
        and_(model.status == in_progress, model.claimed_until <= now),
    )
    query = select(model.id).where(due, *conditions).order_by(model.next_attempt_at).limit(limit)
    if is_postgres(session.get_bind()):
        query = query.with_for_update(skip_locked=True)
    claimed = []
    for row_id in session.scalars(query).all():
        # Conditional, so that of two claimers (SQLite has no SKIP LOCKED) one wins.
        taken = session.execute(
            update(model).where(model.id == row_id, due)
            .values(status=in_progress, claimed_until=now + lease, attempts=model.attempts + 1)
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount == 1:
            claimed.append(row_id)
    return session.scalars(select(model).where(model.id.in_(claimed)).order_by(model.next_attempt_at)).all()


def claim_due_emails(session, now, lease, limit):
    # Login e-mails have no stored body: they are retried from memory, never from here.
    return _claim(session, OutgoingEmail, QUEUED, SENDING, now, lease, limit, OutgoingEmail.text_body.is_not(None))


def _email_in_progress(session, email_id):
    row = session.get(OutgoingEmail, email_id)
    return row if row is not None and row.status == SENDING else None


def email_sent(session, email_id, now):
    """Mark a claimed e-mail sent; None if it was no longer ours to mark."""
    row = _email_in_progress(session, email_id)
    if row is not None:
        row.status, row.sent_at, row.claimed_until, row.last_error = SENT, now, None, None
    return row


def email_retry_at(session, email_id, next_attempt_at, error):
    row = _email_in_progress(session, email_id)
    if row is not None:
        row.status, row.next_attempt_at, row.claimed_until, row.last_error = QUEUED, next_attempt_at, None, error
    return row


def email_failed(session, email_id, error):
    row = _email_in_progress(session, email_id)
    if row is not None:
        row.status, row.claimed_until, row.last_error = FAILED, None, error
    return row


def list_emails(session, status, limit):
    query = select(OutgoingEmail).order_by(OutgoingEmail.created_at.desc()).limit(limit)
    if status is not None:
        query = query.where(OutgoingEmail.status == status)
    return session.scalars(query).all()


def retry_email(session, email_id, now, retry_until):
    """Queue a failed e-mail again, with a fresh retry window."""
    row = session.get(OutgoingEmail, email_id)
    if row is None:
        raise NotFound("E-mail not found.")
    if row.status != FAILED:
        raise RuleRefused(f"Only a failed e-mail can be retried; this one is {row.status}.", code="not_failed")
    if row.text_body is None:
        raise RuleRefused("A login e-mail is never kept, so it cannot be sent again.", code="not_kept")
    row.status, row.next_attempt_at, row.retry_until, row.attempts = QUEUED, now, retry_until, 0
    return row


def _waiting_login_email(session, email_id):
    row = session.get(OutgoingEmail, email_id)
    return row if row is not None and row.status == QUEUED else None


def login_email_attempted(session, email_id, status, error, now):
    """Record one more try of a login e-mail retried from memory; None if it is no
    longer waiting (a sweep dropped it)."""
    row = _waiting_login_email(session, email_id)
    if row is not None:
        row.status, row.attempts, row.last_error = status, row.attempts + 1, error
        if status == SENT:
            row.sent_at = now
    return row


def login_email_dropped(session, email_id):
    row = _waiting_login_email(session, email_id)
    if row is not None:
        row.status = DROPPED


def drop_stale_login_emails(session, before):
    """Login e-mails a dead process was still retrying from memory: their link has expired."""
    return session.execute(
        update(OutgoingEmail)
        .where(
            OutgoingEmail.kind == domain.LOGIN_LINK, OutgoingEmail.status.in_((QUEUED, SENDING)),
            OutgoingEmail.retry_until <= before,
        )
        .values(status=DROPPED, claimed_until=None)
        .execution_options(synchronize_session=False)
    ).rowcount


# -- webhook settings

def _endpoint_view(endpoint):
    return {"id": endpoint.id, "url": endpoint.url, "event_types": endpoint.event_types.split()}


def webhook_settings(session, merchant_id):
    settings = session.get(WebhookSettings, merchant_id)
    endpoints = session.scalars(
        select(WebhookEndpoint)
        .where(WebhookEndpoint.merchant_id == merchant_id, WebhookEndpoint.active.is_(True))
        .order_by(WebhookEndpoint.created_at, WebhookEndpoint.url)
    ).all()
    return {
        "merchant_id": merchant_id,
        "secret": settings.secret if settings else None,
        "endpoints": [_endpoint_view(endpoint) for endpoint in endpoints],
    }


def put_webhook_settings(session, merchant_id, endpoints, rotate_secret, now):
    """Make `endpoints` the merchant's active ones; the secret is made on the first put."""
    settings = session.get(WebhookSettings, merchant_id)
    if settings is None:
        settings = WebhookSettings(merchant_id=merchant_id, secret=new_webhook_secret(), created_at=now, updated_at=now)
        session.add(settings)
        session.flush()
    elif rotate_secret:
        settings.secret = new_webhook_secret()
    settings.updated_at = now
    existing = {
        endpoint.url: endpoint
        for endpoint in session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.merchant_id == merchant_id))
    }
    wanted = {endpoint["url"]: endpoint for endpoint in endpoints}
    for url, endpoint in existing.items():
        endpoint.active = url in wanted
    for url, endpoint in wanted.items():
        event_types = " ".join(sorted(set(endpoint["event_types"])))
        if url in existing:
            existing[url].event_types = event_types
        else:
            session.add(WebhookEndpoint(
                id=str(uuid.uuid4()), merchant_id=merchant_id, url=url, event_types=event_types,
                active=True, created_at=now,
            ))
    session.flush()
    return webhook_settings(session, merchant_id)


def new_webhook_secret():
    return "whsec_" + secrets.token_urlsafe(WEBHOOK_SECRET_BYTES)


def merchant_secret(session, merchant_id):
    return session.scalar(select(WebhookSettings.secret).where(WebhookSettings.merchant_id == merchant_id))


# -- webhook deliveries

def endpoints_wanting(session, envelope):
    """The active endpoints of the envelope's merchant that want its event type."""
    merchant_id = envelope.get("merchant_id")
    if not merchant_id:
        return []
    endpoints = session.scalars(select(WebhookEndpoint).where(
        WebhookEndpoint.merchant_id == merchant_id, WebhookEndpoint.active.is_(True),
    )).all()
    return [endpoint for endpoint in endpoints if domain.endpoint_wants(endpoint.event_types.split(), envelope["type"])]


def queue_deliveries(session, envelope, endpoints, now, retry_until):
    """One delivery of `envelope` per endpoint of `endpoints_wanting` that has none yet."""
    body = json.dumps(envelope, ensure_ascii=False, separators=(",", ":"))
    queued = []
    for endpoint in endpoints:
        already = session.scalar(select(WebhookDelivery.id).where(
            WebhookDelivery.event_id == envelope["event_id"], WebhookDelivery.endpoint_id == endpoint.id,
        ))
        if already is not None:
            continue
        delivery = WebhookDelivery(
            id=str(uuid.uuid4()), merchant_id=endpoint.merchant_id, endpoint_id=endpoint.id,
            event_id=envelope["event_id"], event_type=envelope["type"], body=body, status=PENDING,
            attempts=0, created_at=now, next_attempt_at=now, retry_until=retry_until,
        )
        session.add(delivery)
        queued.append(delivery)
    return queued


def claim_due_deliveries(session, now, lease, limit):
    return _claim(session, WebhookDelivery, PENDING, DELIVERING, now, lease, limit)


def endpoint_url(session, endpoint_id):
    return session.scalar(select(WebhookEndpoint.url).where(WebhookEndpoint.id == endpoint_id))


def record_attempt(session, delivery_id, now, status_code, error):
    """Log one POST; the delivery if it is still ours to update, else None."""
    session.add(WebhookAttempt(delivery_id=delivery_id, attempted_at=now, status_code=status_code, error=error))
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.status != DELIVERING:
        return None
    delivery.last_status_code, delivery.last_error, delivery.claimed_until = status_code, error, None
    return delivery


def delivered(delivery, now):
    delivery.status, delivery.delivered_at = DELIVERED, now


def delivery_retry_at(delivery, next_attempt_at):
    delivery.status, delivery.next_attempt_at = PENDING, next_attempt_at


def delivery_failed(delivery):
    delivery.status = FAILED


def _delivery_view(session, delivery):
    attempts = session.scalars(
        select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery.id).order_by(WebhookAttempt.id)
    ).all()
    return {
        "id": delivery.id, "merchant_id": delivery.merchant_id, "endpoint_id": delivery.endpoint_id,
        "url": endpoint_url(session, delivery.endpoint_id), "event_id": delivery.event_id,
        "event_type": delivery.event_type, "status": delivery.status, "attempts": delivery.attempts,
        "last_status_code": delivery.last_status_code, "last_error": delivery.last_error,
        "created_at": delivery.created_at, "delivered_at": delivery.delivered_at,
        "next_attempt_at": delivery.next_attempt_at if delivery.status == PENDING else None,
        "log": [
            {"at": attempt.attempted_at, "status_code": attempt.status_code, "error": attempt.error}
            for attempt in attempts
        ],
    }


def deliveries_page(session, merchant_id, limit, cursor=None, status=None, event_type=None):
    """Deliveries newest first (of one merchant, or all; of one status, one event type)
    and the cursor of the next page: the id of the last one shown, or None at the end.
    A cursor naming no delivery of the merchant's is refused, naming it."""
    conditions = []
    if merchant_id is not None:
        conditions.append(WebhookDelivery.merchant_id == merchant_id)
    if status is not None:
        conditions.append(WebhookDelivery.status == status)
    if event_type is not None:
        conditions.append(WebhookDelivery.event_type == event_type)
    if cursor is not None:
        after = session.get(WebhookDelivery, cursor)
        if after is None or merchant_id not in (None, after.merchant_id):
            raise ValidationFailed("Unknown cursor.", fields={"cursor": ["Not a cursor of this list."]})
        conditions.append(or_(
            WebhookDelivery.created_at < after.created_at,
            and_(WebhookDelivery.created_at == after.created_at, WebhookDelivery.id < after.id),
        ))
    rows = session.scalars(
        select(WebhookDelivery).where(*conditions)
        .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc()).limit(limit + 1)
    ).all()
    next_cursor = rows[limit - 1].id if len(rows) > limit else None
    return [_delivery_view(session, delivery) for delivery in rows[:limit]], next_cursor


def merchant_delivery(session, merchant_id, delivery_id):
    """The delivery, if it is the merchant's (None: any merchant's, for the operator)."""
    delivery = session.get(WebhookDelivery, delivery_id) if isinstance(delivery_id, str) else None
    if delivery is None or merchant_id not in (None, delivery.merchant_id):
        raise NotFound("Webhook delivery not found.")
    return delivery


def replay_delivery(session, delivery, now, retry_until):
    """Send a delivery again (delivered or failed), with a fresh retry window."""
    if delivery.status in (PENDING, DELIVERING):
        raise RuleRefused("This delivery is still being attempted.", code="delivery_in_progress")
    delivery.status, delivery.next_attempt_at, delivery.retry_until = PENDING, now, retry_until
    # The backoff starts over; the log keeps every earlier attempt.
    delivery.attempts, delivery.delivered_at = 0, None
    session.flush()
    return _delivery_view(session, delivery)
