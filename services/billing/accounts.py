"""Merchants' processor accounts: set by the operator (sealed credentials, a
`processor_account_changed` event that makes notifications write to the owners),
re-sealed when the keys rotate, and the Asaas webhooks and Mercado Pago
notifications addressed to one of them."""
import json
import logging
import uuid

from services.billing import charges, domain, refunds, store
from services.billing.credentials import CredentialKeysMissing, InvalidToken, hint
from services.billing.processors import ACCOUNT_PROCESSORS, ProcessorUnavailable
from services.common import clock
from services.common.errors import Conflict, NotFound, ServiceUnavailable, Unauthorized, ValidationFailed

log = logging.getLogger(__name__)

ASAAS_TOKEN_HEADER = "asaas-access-token"
ASAAS = "asaas"
MERCADOPAGO = "mercadopago"


def callback_url(public_url, account):
    """Where the account's processor posts its events (None: it posts to no URL of its own)."""
    if account.processor not in ACCOUNT_PROCESSORS:
        return None
    return f"{public_url.rstrip('/')}/callbacks/{account.processor}/{account.id}"


def _sealed(box, credentials):
    try:
        return box.seal(credentials)
    except CredentialKeysMissing as missing:
        raise ServiceUnavailable(str(missing), code="credential_keys_missing") from None


def put(db, events, processors, data, public_url):
    """Create or replace the merchant's account from the operator's `data`; an Asaas
    account given no webhook token gets a new one, registered with Asaas first (an
    Asaas that refuses or does not answer leaves everything as it was)."""
    with db.transaction() as session:
        existing = store.merchant_account(session, data["merchant_id"])
        account_id = existing.id if existing else str(uuid.uuid4())
    credentials = {}
    if data["processor"] == MERCADOPAGO:
        credentials = {"api_key": data["api_key"], "webhook_token": data["webhook_token"]}
    if data["processor"] == ASAAS:
        credentials = {"api_key": data["api_key"], "webhook_token": data["webhook_token"]}
        if not credentials["webhook_token"]:
            credentials["webhook_token"] = _registered_token(processors.box, existing, data)
        if not credentials["webhook_token"]:
            credentials["webhook_token"] = domain.new_webhook_token()
            _register_webhook(processors, data, credentials, f"{public_url.rstrip('/')}/callbacks/asaas/{account_id}")
    values = {
        "processor": data["processor"], "environment": data["environment"],
        "sealed_credentials": _sealed(processors.box, credentials), "api_key_hint": hint(data["api_key"]),
        "notify_emails": data["notify"],
    }

    def work(session):
        account, created = store.put_account(session, data["merchant_id"], account_id, values, clock.now())
        events.record(session, "processor_account_changed", account.merchant_id, {
            "account_id": account.id, "processor": account.processor, "environment": account.environment,
            "api_key_hint": account.api_key_hint, "change": "created" if created else "updated",
            "notify": account.notify_emails,
        })
        return account

    return db.retry_on_conflict(work)


def _registered_token(box, existing, data):
    """The webhook token the same Asaas account (same API key and environment) already
    has registered, so setting it again adds no webhook at Asaas (it keeps 10 at most)."""
    if existing is None or (existing.processor, existing.environment) != (ASAAS, data["environment"]):
        return None
    try:
        known = box.open(existing.sealed_credentials)
    except (InvalidToken, CredentialKeysMissing):
        return None
    return known.get("webhook_token") if known.get("api_key") == data["api_key"] else None


def _register_webhook(processors, data, credentials, url):
    adapter = processors.for_credentials(data["processor"], credentials, data["environment"])
    try:
        adapter.register_webhook(url, credentials["webhook_token"], data["notify"][0])
    except ProcessorUnavailable:
        raise ServiceUnavailable("Asaas did not answer; nothing was changed. Try again.") from None
    except ValueError as refusal:
        raise ValidationFailed(f"Asaas refused the webhook: {refusal}", fields={"api_key": [str(refusal)]}) from None
    finally:
        adapter.close()


def reseal_all(db, box):
    """Seal every account's credentials again with the first key; all or none."""
    with db.transaction() as session:
        rows = store.every_account_for_update(session)
        try:
            for account in rows:
                account.sealed_credentials = box.reseal(account.sealed_credentials)
        except InvalidToken:
            raise Conflict(
                "An account is sealed with a key BILLING_CREDENTIAL_KEYS does not hold; nothing was re-sealed.",
                code="unknown_credential_key",
            ) from None
        except CredentialKeysMissing as missing:
            raise ServiceUnavailable(str(missing), code="credential_keys_missing") from None
    return len(rows)


# -- Asaas's webhooks

def asaas_event(db, events, processors, account_id, token, body):
    """Authenticate an Asaas event for `account_id` by its token (401, nothing done,
    otherwise), then settle the order of the payment it names as Asaas says the
    payment stands now. Answered 200 for any authenticated event, even one about
    nothing of ours; 503 only when Asaas does not answer our look-up, so it sends the
    event again."""
    with db.transaction() as session:
        account = store.account_by_id(session, account_id)
    expected = _webhook_token(processors.box, account)
    if not domain.webhook_token_matches(expected, token):
        raise Unauthorized("Bad or missing token.", code="bad_token")
    payment_id = _payment_id(body)
    if payment_id is None:
        return {"ignored": "not a payment event"}
    return _settle_payment(db, events, processors, account, payment_id, "Asaas did not answer; send the event again.")


def _webhook_token(box, account, processor=ASAAS):
    """The account's webhook token (Mercado Pago's: its secret), or None (no such
    account of `processor`, or unreadable)."""
    if account is None or account.processor != processor:
        return None
    try:
        return box.open(account.sealed_credentials).get("webhook_token")
    except (InvalidToken, CredentialKeysMissing):
        log.error("processor account %s: its credentials cannot be opened with BILLING_CREDENTIAL_KEYS", account.id)
        return None


def _payment_id(body):
    """The payment id a `PAYMENT_*` event names, or None for anything else."""
    try:
        event = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(event, dict) or not str(event.get("event", "")).startswith("PAYMENT_"):
        return None
    payment = event.get("payment")
    payment_id = payment.get("id") if isinstance(payment, dict) else None
    return payment_id if isinstance(payment_id, str) and 0 < len(payment_id) <= 100 else None


# -- Mercado Pago's notifications

def mercadopago_notification(db, events, processors, account_id, signed, tolerance_seconds):
    """Authenticate a Mercado Pago notification for `account_id` by its `x-signature`
    (401, nothing done, otherwise), then settle the order of the payment it names as
    Mercado Pago says the payment stands now, fetched from it. `signed`: the request's
    x-signature, x-request-id, the query's data.id and type. Answered 200 for any
    authenticated notification, even one about nothing of ours; 503 only when Mercado
    Pago does not answer our look-up, so it sends the notification again."""
    with db.transaction() as session:
        account = store.account_by_id(session, account_id)
    secret = _webhook_token(processors.box, account, MERCADOPAGO)
    if not domain.mercadopago_signature_is_valid(secret, signed["x_signature"], signed["x_request_id"],
                                                 signed["data_id"], clock.now(), tolerance_seconds):
        raise Unauthorized("Bad or missing signature.", code="bad_signature")
    payment_id = signed["data_id"]
    if signed["type"] != "payment" or not (payment_id or "").isdigit() or len(payment_id) > 30:
        return {"ignored": "not a payment notification"}
    return _settle_payment(db, events, processors, account, payment_id,
                           "Mercado Pago did not answer; send the notification again.")


def _settle_payment(db, events, processors, account, payment_id, unanswered):
    """A callback's outcome: the order of the account's payment `payment_id`, settled as
    its processor says it stands now, and its pending refunds as the processor says they
    stand; ServiceUnavailable (`unanswered`) if it does not say."""
    try:
        key = processors.for_account(account).payment_key(payment_id)
    except ProcessorUnavailable:
        raise ServiceUnavailable(unanswered) from None
    if key is None:
        return {"ignored": "no payment of ours"}
    try:
        order = charges.settle_by_key(db, events, processors, key, account.processor, account.id)
    except NotFound:
        return {"ignored": "no order of this account"}
    order = refunds.settle_pending_of(db, events, processors, order)
    return {"code": order.code, "status": order.status}
