"""nameko entrypoints of the subscriptions service: load a command, run its handler
(handlers.py) on a unit of work with the ports, dump the answer."""
import logging
import threading
from collections import Counter
from datetime import timedelta

import eventlet

from nameko.dependency_providers import Config
from nameko.extensions import DependencyProvider
from sqlalchemy.orm.exc import StaleDataError

from services.common import clock
from services.common.db import Database, is_postgres
from services.common.envelope import EventType, event_catalog
from services.common.errors import EXPECTED_ERRORS, PortalError, ValidationFailed
from services.common.events import event_handler
from services.common.outbox import Outbox
from services.common.callers import OPERATOR
from services.common.rpc import Pingable, TimedRpc, rpc
from services.common.schemas import IdentitySchema, sent_as_sale_card
from services.common.timer import timer
from services.common.validation import load
from services.subscriptions import domain, handlers, idempotency, store
from services.subscriptions.domain import commands
from services.subscriptions.models import outbox
from services.subscriptions.ports import Ports, RpcBilling
from services.subscriptions.unit_of_work import SqlUnitOfWork
from services.subscriptions.schemas import (
    ActivitySchema, CanceledSchema, CancellationScheduledSchema, CancellationUndoneSchema, CancelRequestSchema,
    ContactSchema, CustomerPageSchema, CustomerQuerySchema, CustomerSchema, IdempotencyKeySchema,
    MerchantCancelRequestSchema, MerchantSchema, MerchantSettingsSchema, OfferActorSchema, OfferChangedSchema,
    OfferChangeSchema, OfferSchema, OfferViewSchema, OrderRefSchema,
    PageRequestSchema, PastDueSchema, PaymentMethodChangedSchema, PaymentMethodChangeSchema, PaymentNotAppliedSchema,
    PaymentNotAppliedViewSchema, PendingPlanChangeSchema,
    PlanChangeOptionsSchema,
    PlanChangedSchema, PlanChangeDroppedSchema, PlanChangeRequestSchema, PlanChangeScheduledSchema,
    QuoteRequestSchema, QuoteSchema, RenewedSchema, SubscriptionCreatedSchema,
    SubscriptionDetailSchema, SubscriptionInputSchema, SubscriptionSchema, SupportPageSchema,
)

EVENTS = event_catalog(
    EventType("subscription_created", SubscriptionCreatedSchema()),
    EventType("subscription_plan_changed", PlanChangedSchema()),
    EventType("subscription_plan_change_scheduled", PlanChangeScheduledSchema()),
    EventType("subscription_plan_change_dropped", PlanChangeDroppedSchema()),
    EventType("subscription_payment_method_changed", PaymentMethodChangedSchema()),
    EventType("subscription_canceled", CanceledSchema()),
    EventType("subscription_cancellation_scheduled", CancellationScheduledSchema()),
    EventType("subscription_cancellation_undone", CancellationUndoneSchema()),
    EventType("subscription_renewed", RenewedSchema()),
    EventType("subscription_past_due", PastDueSchema()),
    EventType("subscription_payment_not_applied", PaymentNotAppliedSchema()),
    EventType("offer_changed", OfferChangedSchema()),
)

IDENTITY = IdentitySchema()
MERCHANT = MerchantSchema()
MERCHANT_SETTINGS = MerchantSettingsSchema()
OFFER_CHANGE = OfferChangeSchema(partial=True)
OFFER_CHANGED = OfferChangedSchema()
OFFER_ACTOR = OfferActorSchema()
PAGE_REQUEST = PageRequestSchema()
PLAN_CHANGE_OPTIONS = PlanChangeOptionsSchema()
OFFER = OfferSchema()
CONTACT = ContactSchema()
CUSTOMER = CustomerSchema()
CUSTOMER_QUERY = CustomerQuerySchema()
CUSTOMER_PAGE = CustomerPageSchema()
SUPPORT_PAGE = SupportPageSchema()
SUBSCRIPTION_INPUT = SubscriptionInputSchema()
SUBSCRIPTION = SubscriptionSchema()
QUOTE_REQUEST = QuoteRequestSchema()
PLAN_CHANGE_REQUEST = PlanChangeRequestSchema()
PAYMENT_METHOD_CHANGE = PaymentMethodChangeSchema()
CANCEL_REQUEST = CancelRequestSchema()
MERCHANT_CANCEL_REQUEST = MerchantCancelRequestSchema()
IDEMPOTENCY_KEY = IdempotencyKeySchema()
QUOTE = QuoteSchema()
OFFER_VIEW = OfferViewSchema()
PENDING_PLAN_CHANGE = PendingPlanChangeSchema()
ACTIVITY = ActivitySchema()
ORDER_REF = OrderRefSchema()
PAYMENT_NOT_APPLIED = PaymentNotAppliedViewSchema()
log = logging.getLogger(__name__)
# Who may change a payment method: the buyer (also through billing's card form) or the merchant.
METHOD_CHANGE_ACTORS = ("buyer", "merchant")


def _cursor(row_id):
    """A numeric id as the cursor of the next page: a string, like every list's."""
    return None if row_id is None else str(row_id)


class OnePassAtATime(DependencyProvider):
    """The process's lock around a renewal pass: its timer and `run_renewals` never run
    two passes at once (other replicas are kept apart by the database, see store.claim_due_batch)."""

    def setup(self):
        self.lock = threading.Lock()

    def get_dependency(self, worker_ctx):
        return self.lock


class SubscriptionsService(Pingable):
    name = "subscriptions"

    db = Database("SUBSCRIPTIONS_DB_URL")
    events = Outbox("SUBSCRIPTIONS_DB_URL", outbox, EVENTS)
    billing = TimedRpc("billing")
    config = Config()
    renewal_pass = OnePassAtATime()

    def _ports(self):
        """What the handlers use of the world outside the database; the one place the
        service reads the shared clock (CLOCK_FILE) from."""
        days_ahead = float(self.config.get("RENEWAL_ISSUE_DAYS_AHEAD", 3))
        return Ports(RpcBilling(self.billing), clock.now, timedelta(days=days_ahead))

    def _uow(self, session, ports):
        return SqlUnitOfWork(session, self.events, ports.clock)

    def _handle(self, handler, command, dump, session=None):
        """`dump(handler(command, uow, ports))` in `session`'s transaction, or a new one."""
        if session is None:
            with self.db.transaction() as session:
                return self._handle(handler, command, dump, session)
        ports = self._ports()
        return dump(handler(command, self._uow(session, ports), ports))

    def _detail(self, subscription):
        """A subscription as its page shows it now (with what the buyer may do now)."""
        return SubscriptionDetailSchema(self._ports().clock()).dump(subscription)

    def _changed(self, subscription, order=None):
        """What a buyer operation answers: the subscription as it is now, and the order of
        the charge it made, if any."""
        return {
            "subscription": self._detail(subscription),
            "order": ORDER_REF.dump(order) if order is not None else None,
        }

    def _buyer_request(self, identity, idempotency_key, operation, arguments, command_for, handler, dump,
                       keep_answer=True):
        """Run a buyer's command once per Idempotency-Key (see idempotency.py), the
        request finished in the transaction of its change."""
        identity = load(IDENTITY, identity)
        if idempotency_key is not None:
            idempotency_key = load(IDEMPOTENCY_KEY, {"idempotency_key": idempotency_key})["idempotency_key"]
        command = command_for(identity)
        return idempotency.run_once(
            self.db, self._ports().clock, identity, idempotency_key, operation, arguments,
            lambda session: self._handle(handler, command, dump, session), keep_answer,
        )

    @rpc(expected_exceptions=EXPECTED_ERRORS, callers=(OPERATOR,))
    def upsert_merchant(self, merchant):
        data = load(MERCHANT, merchant)
        return self.db.retry_on_conflict(lambda session: MERCHANT.dump(store.upsert_merchant(session, data)))

    @rpc(expected_exceptions=EXPECTED_ERRORS, callers=(OPERATOR,))
    def create_merchant(self, merchant):
        """A new merchant (onboarding); an id already taken is a conflict."""
        data = load(MERCHANT, merchant)
        # A concurrent creation of the same id: the second run answers 409.
        return self.db.retry_on_conflict(lambda session: MERCHANT.dump(store.create_merchant(session, data)))

    @rpc(expected_exceptions=EXPECTED_ERRORS, callers=(OPERATOR,))
    def list_merchants(self, cursor=None, limit=50):
        page = load(PAGE_REQUEST, {"cursor": cursor, "limit": limit})
        with self.db.transaction() as session:
            merchants, next_cursor = store.merchants_page(session, page["cursor"], page["limit"])
            return {"merchants": MERCHANT.dump(merchants, many=True), "next_cursor": next_cursor}

    @rpc(expected_exceptions=EXPECTED_ERRORS, callers=(OPERATOR,))
    def upsert_offer(self, offer):
        data = load(OFFER, offer)
        return self.db.retry_on_conflict(
            lambda session: self._offer_changed(session, store.upsert_offer(session, data), "operator"))

    def _offer_changed(self, session, written, actor):
        """The offer's answer, its change announced (`offer_changed`) in the same
        transaction; a write that changed nothing announces nothing."""
        found = OFFER.dump(written.offer)
        if written.changed:
            archived = "status" in written.changed and written.offer.status == domain.ARCHIVED
            change = "created" if written.created else "archived" if archived else "updated"
            self.events.record(session, "offer_changed", written.offer.merchant_id, OFFER_CHANGED.dump({
                **found, "offer_id": written.offer.id, "change": change, "changed": written.changed, "actor": actor,
            }))
        return found

    @rpc(expected_exceptions=EXPECTED_ERRORS, sensitive_arguments=("contact.document",))
    def upsert_contact(self, contact):
        data = load(CONTACT, contact)
        return self.db.retry_on_conflict(lambda session: CONTACT.dump(store.upsert_contact(session, data)))

    @rpc(expected_exceptions=EXPECTED_ERRORS,
         sensitive_arguments=("subscription.payment.token", "subscription.payment.card.card_ref"))
    def create_subscription(self, subscription):
        """Register a checkout's subscription (handlers.create_subscription); a repeat of
        its external_id answers the first."""
        command = commands.CreateSubscription(
            load(SUBSCRIPTION_INPUT, subscription),
            sent_as_sale_card(subscription.get("payment") if isinstance(subscription, dict) else None))
        return self.db.retry_on_conflict(
            lambda session: self._handle(handlers.create_subscription, command, SUBSCRIPTION.dump, session))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def customer_exists(self, email, merchant_id=None):
        if not isinstance(email, str):
            raise ValidationFailed("An e-mail is a string.", fields={"email": ["Not a valid string."]})
        with self.db.transaction() as session:
            return store.customer_exists(session, email, merchant_id)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def get_merchant(self, merchant_id):
        """A merchant's profile and self-service settings (branding, support, SSO origins)."""
        with self.db.transaction() as session:
            return MERCHANT.dump(store.merchant(session, merchant_id))

    # -- a merchant's own settings and catalog (the merchant API, scoped by its API key)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def put_merchant_settings(self, merchant_id, settings):
        """Replace a known merchant's self-service settings (left-out keys: their defaults)."""
        data = load(MERCHANT_SETTINGS, settings)
        with self.db.transaction() as session:
            return MERCHANT.dump(store.update_merchant_settings(session, merchant_id, data))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def list_offers(self, merchant_id, cursor=None, limit=50, status=None):
        """A page of the merchant's offers by id (`next_cursor`: the next page's, or None)."""
        page = load(PAGE_REQUEST, {"cursor": cursor, "limit": limit, "status": status})
        with self.db.transaction() as session:
            offers, next_cursor = store.offers_page(session, merchant_id, page["cursor"], page["limit"], page["status"])
            return {"offers": OFFER.dump(offers, many=True), "next_cursor": next_cursor}

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def create_offer(self, merchant_id, offer, actor="merchant"):
        """A new offer of the merchant, by the merchant (its API key) or an operator."""
        actor = load(OFFER_ACTOR, {"actor": actor})["actor"]
        data = load(OFFER, {**(offer if isinstance(offer, dict) else {}), "merchant_id": merchant_id})
        # A concurrent creation of the same id: the second run answers 409.
        return self.db.retry_on_conflict(
            lambda session: self._offer_changed(session, store.create_offer(session, data), actor))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def update_offer(self, merchant_id, offer_id, changes, actor="merchant"):
        """The merchant's offer with the terms sent changed (archived with `status`);
        an offer in use keeps its price and periodicity (domain.offer_change_problems)."""
        actor = load(OFFER_ACTOR, {"actor": actor})["actor"]
        data = load(OFFER_CHANGE, changes)
        with self.db.transaction() as session:
            return self._offer_changed(session, store.update_offer(session, merchant_id, offer_id, data), actor)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def set_plan_change_options(self, merchant_id, offer_id, request):
        options = load(PLAN_CHANGE_OPTIONS, request)["plan_change_options"]
        with self.db.transaction() as session:
            written = store.set_plan_change_options(session, merchant_id, offer_id, options)
            return self._offer_changed(session, written, "merchant")

    # -- a merchant's support team (the merchant API, scoped by its API key)

    @rpc(expected_exceptions=EXPECTED_ERRORS, sensitive_arguments=("query.document",))
    def find_customers(self, merchant_id, query):
        """A page of the merchant's buyers with the `email` or the `document` (CPF/CNPJ) asked."""
        found = load(CUSTOMER_QUERY, query)
        with self.db.transaction() as session:
            customers, next_cursor = store.customers_page(
                session, merchant_id, found["email"], found["document"], found["cursor"], found["limit"])
            return {"customers": CUSTOMER.dump(customers, many=True), "next_cursor": _cursor(next_cursor)}

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def customer_subscriptions(self, merchant_id, email, cursor=None, limit=50):
        """A page of the merchant's subscriptions of the buyer `email`."""
        page = load(CUSTOMER_PAGE, {"email": email, "cursor": cursor, "limit": limit})
        with self.db.transaction() as session:
            found, next_cursor = store.customer_subscriptions_page(
                session, merchant_id, page["email"], page["cursor"], page["limit"])
            return {"subscriptions": SUBSCRIPTION.dump(found, many=True), "next_cursor": next_cursor}

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def merchant_activity(self, merchant_id, subscription_id, cursor=None, limit=50):
        """A page of the activity of the merchant's subscription, newest first."""
        page = load(SUPPORT_PAGE, {"cursor": cursor, "limit": limit})
        with self.db.transaction() as session:
            subscription = store.merchant_subscription(session, merchant_id, subscription_id)
            entries, next_cursor = store.activity_page(session, subscription.id, page["cursor"], page["limit"])
            return {"activity": ACTIVITY.dump(entries, many=True), "next_cursor": _cursor(next_cursor)}

    def _for_buyer(self, merchant_id, subscription_id, command_for, handler, dump=None):
        """Run a buyer's `handler` for the merchant, on the merchant's subscription, with
        the merchant as the actor (`command_for(identity)`: the command): the same
        rules, events and activity as the buyer's own operation; `dump` its answer
        (default: `_changed`)."""
        with self.db.transaction() as session:
            subscription = store.merchant_subscription(session, merchant_id, subscription_id)
            identity = {"email": subscription.email, "merchant_id": subscription.merchant_id}
            return self._handle(handler, command_for(identity), dump or self._changed, session)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def merchant_cancel(self, merchant_id, subscription_id, request):
        """The merchant cancels its buyer's subscription, now or at the period's end."""
        loaded = load(MERCHANT_CANCEL_REQUEST, request)
        return self._for_buyer(merchant_id, subscription_id, lambda identity: commands.Cancel(
            identity, subscription_id, loaded["reason"], loaded["comment"], loaded["at_period_end"],
            actor=domain.MERCHANT), handlers.cancel)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def merchant_undo_cancel(self, merchant_id, subscription_id):
        """The merchant undoes its buyer's cancellation scheduled for the period's end."""
        return self._for_buyer(merchant_id, subscription_id, lambda identity: commands.UndoCancel(
            identity, subscription_id, actor=domain.MERCHANT), handlers.undo_cancel)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def merchant_quote_plan_change(self, merchant_id, subscription_id, offer_id):
        """The merchant quotes a plan change for its buyer (whatever the self-service settings)."""
        request = load(QUOTE_REQUEST, {"offer_id": offer_id})
        return self._for_buyer(merchant_id, subscription_id, lambda identity: commands.QuotePlanChange(
            identity, subscription_id, request["offer_id"], actor=domain.MERCHANT), handlers.quote_plan_change,
            QUOTE.dump)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def merchant_change_plan(self, merchant_id, subscription_id, quote_id, installments=1):
        """The merchant confirms its quote: charged exactly as quoted, with the buyer's payment method."""
        request = load(PLAN_CHANGE_REQUEST, {"quote_id": quote_id, "installments": installments})
        return self._for_buyer(merchant_id, subscription_id, lambda identity: commands.ChangePlan(
            identity, subscription_id, request["quote_id"], request["installments"], actor=domain.MERCHANT),
            handlers.change_plan, lambda answer: self._changed(*answer))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def note_login_link_requested(self, merchant_id, email):
        """The merchant's support asks for its buyer's login e-mail: noted in the
        activity of the buyer's subscriptions there; 404 if `email` is none of its buyers."""
        email = load(CUSTOMER_PAGE, {"email": email})["email"]
        command = commands.NoteLoginLinkRequested(merchant_id, email, domain.MERCHANT)
        return self._handle(handlers.note_login_link_requested, command,
                            lambda subscriptions: {"subscription_ids": [s.id for s in subscriptions]})

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def list_subscriptions(self, identity):
        identity = load(IDENTITY, identity)
        with self.db.transaction() as session:
            return SUBSCRIPTION.dump(store.buyer_subscriptions(session, identity), many=True)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def get_subscription(self, identity, subscription_id):
        identity = load(IDENTITY, identity)
        with self.db.transaction() as session:
            return self._detail(store.buyer_subscription(session, identity, subscription_id))

    # -- the buyer's self-service operations

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def plan_options(self, identity, subscription_id):
        def dump(found):
            subscription, options = found
            return {
                "subscription_id": subscription.id,
                "current": OFFER_VIEW.dump(subscription.offer),
                "options": [{**OFFER_VIEW.dump(offer), "kind": kind} for offer, kind in options],
                "pending_change": PENDING_PLAN_CHANGE.dump(subscription) if subscription.pending_change_status else None,
            }

        command = commands.PlanOptions(load(IDENTITY, identity), subscription_id)
        return self._handle(handlers.plan_options, command, dump)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def quote_plan_change(self, identity, subscription_id, offer_id, idempotency_key=None):
        request = load(QUOTE_REQUEST, {"offer_id": offer_id})
        return self._buyer_request(
            identity, idempotency_key, "quote_plan_change", [subscription_id, offer_id],
            lambda identity: commands.QuotePlanChange(identity, subscription_id, request["offer_id"]),
            handlers.quote_plan_change, QUOTE.dump,
        )

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def change_plan(self, identity, subscription_id, quote_id, installments=1, idempotency_key=None):
        request = load(PLAN_CHANGE_REQUEST, {"quote_id": quote_id, "installments": installments})
        return self._buyer_request(
            identity, idempotency_key, "change_plan", [subscription_id, quote_id, installments],
            lambda identity: commands.ChangePlan(
                identity, subscription_id, request["quote_id"], request["installments"]),
            handlers.change_plan, lambda answer: self._changed(*answer),
        )

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def undo_plan_change(self, identity, subscription_id):
        return self._buyer_request(
            identity, None, "undo_plan_change", [subscription_id],
            lambda identity: commands.UndoPlanChange(identity, subscription_id), handlers.undo_plan_change,
            self._changed,
        )

    @rpc(expected_exceptions=EXPECTED_ERRORS, sensitive_arguments=("change.card_token",))
    def change_payment_method(self, identity, subscription_id, change, actor="buyer", idempotency_key=None):
        request = load(PAYMENT_METHOD_CHANGE, change)
        if actor not in METHOD_CHANGE_ACTORS:
            raise ValidationFailed("Unknown actor.", fields={"actor": [f"One of {', '.join(METHOD_CHANGE_ACTORS)}."]})
        return self._buyer_request(
            identity, idempotency_key, "change_payment_method", [subscription_id, change],
            lambda identity: commands.ChangePaymentMethod(
                identity, subscription_id, request["method"], request.get("card_token"), actor=actor),
            handlers.change_payment_method, lambda answer: self._changed(*answer),
        )

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def begin_card_update(self, identity, subscription_id, idempotency_key=None):
        """billing's one-time card-entry ticket (`form_url`, `expires_at`) for this subscription.

        The ticket is a live secret, kept only as its digest by billing: it is not stored
        here either, and a repeat under the same Idempotency-Key gets a fresh one.
        """
        return self._buyer_request(
            identity, idempotency_key, "begin_card_update", [subscription_id],
            lambda identity: commands.BeginCardUpdate(identity, subscription_id), handlers.begin_card_update,
            lambda ticket: ticket, keep_answer=False,
        )

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def cancel(self, identity, subscription_id, request=None, idempotency_key=None):
        loaded = load(CANCEL_REQUEST, request if request is not None else {})
        return self._buyer_request(
            identity, idempotency_key, "cancel", [subscription_id, request],
            lambda identity: commands.Cancel(identity, subscription_id, loaded["reason"], loaded["comment"]),
            handlers.cancel, self._changed,
        )

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def undo_cancel(self, identity, subscription_id):
        return self._buyer_request(
            identity, None, "undo_cancel", [subscription_id],
            lambda identity: commands.UndoCancel(identity, subscription_id), handlers.undo_cancel, self._changed,
        )

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def activity(self, identity, subscription_id):
        identity = load(IDENTITY, identity)
        with self.db.transaction() as session:
            subscription = store.buyer_subscription(session, identity, subscription_id)
            return ACTIVITY.dump(store.activity(session, subscription.id), many=True)

    # -- billing's payments

    @event_handler("billing", "order_paid")
    def on_order_paid(self, envelope):
        """A plan change's boleto/pix (or a late card answer) paid, or a renewal paid."""
        self._settle(envelope, "order_paid")

    @event_handler("billing", "charge_failed")
    def on_charge_failed(self, envelope):
        """An awaited plan change's charge failed: the change is off. (A failed renewal is
        seen by the renewal job, which asks billing again by the same key.)"""
        self._settle(envelope, "charge_failed")

    def _settle(self, envelope, event_type):
        command = commands.SettleOrder(envelope["event_id"], event_type, envelope["data"])
        self._handle(handlers.settle_order, command, lambda nothing: None)

    @rpc(expected_exceptions=EXPECTED_ERRORS, callers=(OPERATOR,))
    def payments_not_applied(self, merchant_id=None, limit=100):
        """Paid orders no subscription took (for operators: `portalctl payments not-applied`)."""
        if not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise ValidationFailed("A limit from 1 to 1000.", fields={"limit": ["From 1 to 1000."]})
        with self.db.transaction() as session:
            return PAYMENT_NOT_APPLIED.dump(store.payments_not_applied(session, merchant_id, limit), many=True)

    # -- renewals

    @timer("RENEWAL_INTERVAL", default=60)
    def renew_due_subscriptions(self):
        self._run_renewals()

    @rpc(expected_exceptions=EXPECTED_ERRORS, callers=(OPERATOR,))
    def run_renewals(self):
        """One pass of the renewal job now (for operators and tests); what it did, counted."""
        return self._run_renewals()

    def _run_renewals(self):
        batch_size = int(self.config.get("RENEWAL_BATCH_SIZE", 50))
        # One call charges a whole batch, so it may take longer than a single RPC.
        billing_timeout = float(self.config.get("RENEWAL_BILLING_TIMEOUT", 30))
        batches_at_once = int(self.config.get("RENEWAL_CONCURRENCY", 2)) if is_postgres(self.db.engine) else 1
        with self.renewal_pass:
            return self._renewal_pass(batch_size, billing_timeout, batches_at_once)

    def _renewal_pass(self, batch_size, billing_timeout, batches_at_once):
        """One pass of the renewal job over every subscription due now, `batch_size` at a
        time (handlers.renew_due_batch, one transaction each), up to `batches_at_once`
        batches under way at once (each spends most of its time waiting on billing; on
        SQLite, whose write lock must not wait on billing, 1); what happened, counted."""
        summary = Counter()
        command = commands.RenewDueBatch(batch_size, billing_timeout, handlers.ClaimPosition())

        def batches():
            while (steps := self._renewal_batch(command)) is not None:
                summary.update(steps)

        workers = [eventlet.spawn(batches) for _ in range(batches_at_once)]
        failures = []
        for worker in workers:
            try:
                worker.wait()
            except Exception as error:  # the pass stops; the others still finish their batch
                failures.append(error)
        if failures:
            raise failures[0]
        return dict(summary)

    def _renewal_batch(self, command):
        steps = None
        try:
            with self.db.transaction() as session:
                ports = self._ports()
                steps = handlers.renew_due_batch(command, self._uow(session, ports), ports)
            return steps
        except (PortalError, StaleDataError) as error:
            if not steps:
                raise  # not even claimed: the pass cannot go on
            # Its transaction failed at the end (SQLite: a row changed under it, see
            # models.py): rolled back whole, due again at the next pass.
            log.warning("a batch of %s renewals left for the next pass: %r", sum(steps.values()), error)
            return Counter(left_for_next_pass=sum(steps.values()))
