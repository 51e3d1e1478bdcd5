"""nameko entrypoints of the billing service: load, act, dump."""
import logging

from nameko.dependency_providers import Config
from nameko.exceptions import RemoteError

from services.billing import accounts, card_entry, charges, domain, intake, pages, refunds, store
from services.billing.credentials import KEYS_SETTING
from services.billing.models import outbox
from services.billing.processors import PaymentProcessor
from services.billing.schemas import (
    CardEntryTicketRequestSchema, CardRegistrationSchema, CustomerOrdersPageSchema, ChargeFailedEventSchema, ChargeRequestSchema, OrderEventSchema,
    OrderInputSchema, OrderSchema, OrderSettledEventSchema, PaymentMethodAddedEventSchema, PaymentMethodSchema,
    OrdersByKeysSchema, ProcessorAccountChangedEventSchema, ProcessorAccountInputSchema, ProcessorAccountSchema,
    PaymentNotAppliedEventSchema, ProcessorCallbackSchema, RefundEventSchema, RefundRequestSchema, RefundSchema, TicketSchema, MAX_CHARGE_BATCH,
)
from services.common import clock
from services.common.client_address import client_address, trusted_networks
from services.common.db import Database
from services.common.envelope import EventType, event_catalog
from services.common.i18n import N_
from services.common.errors import (
    EXPECTED_ERRORS, Conflict, NotFound, PortalError, ServiceUnavailable, Unauthorized, ValidationFailed,
)
from services.common.events import event_handler
from services.common.outbox import Outbox
from services.common.callers import OPERATOR
from services.common.production import in_production
from services.common.rpc import Pingable, TimedRpc, rpc
from services.common.schemas import IdentitySchema, sent_as_sale_card
from services.common.timer import timer
from services.common.validation import load
from services.common.web import http, json_response, read_json

log = logging.getLogger(__name__)

EVENTS = event_catalog(
    EventType("order_created", OrderEventSchema()),
    EventType("order_paid", OrderSettledEventSchema()),
    EventType("order_awaiting_payment", OrderSettledEventSchema()),
    EventType("charge_failed", ChargeFailedEventSchema()),
    EventType("order_refunded", RefundEventSchema()),
    EventType("refund_failed", RefundEventSchema()),
    EventType("payment_method_added", PaymentMethodAddedEventSchema()),
    EventType("processor_account_changed", ProcessorAccountChangedEventSchema()),
)

IDENTITY = IdentitySchema()
CUSTOMER_ORDERS_PAGE = CustomerOrdersPageSchema()
ORDER_INPUT = OrderInputSchema()
CHARGE_REQUEST = ChargeRequestSchema()
CARD_REGISTRATION = CardRegistrationSchema()
ORDERS_BY_KEYS = OrdersByKeysSchema()
TICKET_REQUEST = CardEntryTicketRequestSchema()
CALLBACK = ProcessorCallbackSchema()
ORDER = OrderSchema()
PAYMENT_METHOD = PaymentMethodSchema()
TICKET = TicketSchema()
ACCOUNT_INPUT = ProcessorAccountInputSchema()
ACCOUNT = ProcessorAccountSchema()
REFUND_REQUEST = RefundRequestSchema()
REFUND = RefundSchema()
# A refund as its buyer sees it on the order: not who asked, nor why it failed.
BUYER_REFUNDS = RefundSchema(many=True, only=("amount_cents", "status", "created_at", "settled_at"))
PAYMENT_NOT_APPLIED = PaymentNotAppliedEventSchema()
# The card form's fields (and the holder's, `domain.HOLDER_FIELDS`, where the processor
# needs them); the number and CVV among them are never kept, logged or shown.
CARD_FIELDS = ("number", "expiry", "security_code", "holder_name")
SIGNATURE_HEADER = "X-Signature"
# Who asks subscriptions about an order's subscription at intake (no buyer session exists).
INTAKE_SESSION = "billing-intake"
DEFAULT_RECONCILE_INTERVAL = 30
# How far from now a Mercado Pago notification's signature time may be.
# Mercado Pago sends a notification again for days (15 min, 30 min, 6 h, 48 h, 96 h…),
# perhaps under its first signature time; an old but authentic one only makes billing
# fetch the payment again, so the window is wide: 5 days.
DEFAULT_SIGNATURE_TOLERANCE_SECONDS = 5 * 24 * 3600


class BillingService(Pingable):
    name = "billing"
    # Secrets production mode refuses to start with when unset or shipped defaults.
    secret_settings = ("PROCESSOR_WEBHOOK_SECRET", KEYS_SETTING)

    db = Database("BILLING_DB_URL")
    events = Outbox("BILLING_DB_URL", outbox, EVENTS)
    processors = PaymentProcessor()
    subscriptions = TimedRpc("subscriptions")
    config = Config()

    # -- RPC

    @rpc(expected_exceptions=EXPECTED_ERRORS,
         sensitive_arguments=("order.payment.token", "order.payment.card.card_ref"))
    def record_order(self, order):
        """Register a checkout's order; a repeat of its external_id returns the first."""
        data = load(ORDER_INPUT, order)
        if data["subscription_id"] is not None:
            self._require_own_subscription(data)
        intake.check_card(self.db, self.processors, data["merchant_id"], data["payment"],
                          sent_as_sale_card(order.get("payment")))

        def work(session):
            existing = store.find_by_external_id(session, data["merchant_id"], data["external_id"])
            if existing is not None:
                return ORDER.dump(existing)
            created = store.create_order(session, data)
            charges.announce_new_order(session, self.events, created)
            return ORDER.dump(created)

        return self.db.retry_on_conflict(work)

    def _require_own_subscription(self, order):
        """The subscription an order names is one of its merchant's, bought by its buyer:
        subscriptions, which owns them, answers "not found" for any other, as for an
        id that does not exist."""
        owner = {"email": order["buyer"]["email"], "merchant_id": order["merchant_id"], "session_id": INTAKE_SESSION}
        try:
            self.subscriptions.get_subscription(owner, str(order["subscription_id"]))
        except NotFound:
            raise NotFound(
                "Subscription not found.", fields={"subscription_id": ["No subscription of this merchant's buyer."]},
            ) from None

    @rpc(expected_exceptions=EXPECTED_ERRORS, sensitive_arguments=("card.payment.token", "card.payment.card.card_ref"))
    def register_card(self, card):
        """Keep a checkout's card on file for its buyer (subscriptions' intake sends it
        before the subscription's first order may come); a repeat changes nothing."""
        data = load(CARD_REGISTRATION, card)
        intake.check_card(self.db, self.processors, data["merchant_id"], data["payment"],
                          sent_as_sale_card(card.get("payment")))

        def work(session):
            store.card_on_file(session, data["merchant_id"], data["email"], data["payment"], clock.now())
            return None

        return self.db.retry_on_conflict(work)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def list_orders(self, identity, subscription_id=None):
        """The buyer's orders, newest first; a subscription's invoice history with `subscription_id`."""
        identity = load(IDENTITY, identity)
        if subscription_id is not None and not isinstance(subscription_id, str):
            return []  # no subscription has such an id
        with self.db.transaction() as session:
            return self._buyer_views(session, store.buyer_orders(session, identity, subscription_id))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def merchant_customer_orders(self, merchant_id, email, cursor=None, limit=50):
        """A page of the merchant's orders of the buyer `email`, newest first, as the
        buyer sees them (the merchant's support API; no buyer's session involved)."""
        page = load(CUSTOMER_ORDERS_PAGE, {"merchant_id": merchant_id, "email": email, "cursor": cursor, "limit": limit})
        with self.db.transaction() as session:
            orders, next_cursor = store.customer_orders_page(session, **page)
            return {"orders": self._buyer_views(session, orders), "next_cursor": next_cursor}

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def get_order(self, identity, code):
        identity = load(IDENTITY, identity)
        if not isinstance(code, str):
            raise NotFound("Order not found.")
        with self.db.transaction() as session:
            # Codes are read aloud and typed: accept them in any case.
            [order] = self._buyer_views(session, [store.buyer_order(session, identity, code.strip().upper())])
            return order

    @staticmethod
    def _buyer_views(session, orders):
        """Orders as their buyer sees them: with their refunds and how much of each
        order they gave back (`refunded_cents`), in one query for all."""
        refunds = store.order_refunds(session, [order.id for order in orders])
        return [{
            **ORDER.dump(order), "refunds": BUYER_REFUNDS.dump(refunds[order.id]),
            "refunded_cents": sum(refund.amount_cents for refund in refunds[order.id] if refund.status == "done"),
        } for order in orders]

    @rpc(expected_exceptions=EXPECTED_ERRORS, sensitive_arguments=("request.payment_token",))
    def charge(self, request):
        """Charge once per idempotency key; a repeat answers the first order as it stands."""
        request = load(CHARGE_REQUEST, request)
        return ORDER.dump(charges.charge(self.db, self.events, self.processors, request))

    @rpc(expected_exceptions=EXPECTED_ERRORS, sensitive_arguments=("requests",))
    def charge_batch(self, requests):
        """`charge` for each request of a list, in one call: a list of answers in the
        same order, each `{"order": ..., "error": None}` or, for a request refused
        (invalid, or a card not this buyer's), `{"order": None, "error": {code, message,
        fields}}`; one refusal leaves the other charges be."""
        if not isinstance(requests, list) or len(requests) > MAX_CHARGE_BATCH:
            raise ValidationFailed(
                f"A list of at most {MAX_CHARGE_BATCH} charge requests.",
                fields={"requests": ["Not a list or too long."]},
            )
        loaded = []
        for request in requests:
            try:
                loaded.append(load(CHARGE_REQUEST, request))
            except ValidationFailed as refusal:
                loaded.append(refusal)
        valid = [request for request in loaded if not isinstance(request, ValidationFailed)]
        charged = iter(charges.charge_batch(self.db, self.events, self.processors, valid))
        answers = [request if isinstance(request, ValidationFailed) else next(charged) for request in loaded]
        return [
            {"order": None, "error": answer.to_dict()} if isinstance(answer, PortalError)
            else {"order": ORDER.dump(answer), "error": None}
            for answer in answers
        ]

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def orders_by_keys(self, idempotency_keys):
        """The orders of the charges already made under these keys, by key (a key no
        charge has is left out): what was charged, without charging anything."""
        keys = load(ORDERS_BY_KEYS, {"idempotency_keys": idempotency_keys})["idempotency_keys"]
        with self.db.transaction() as session:
            return {key: ORDER.dump(order) for key, order in store.orders_by_keys(session, keys).items()}

    @rpc(expected_exceptions=EXPECTED_ERRORS, callers=(OPERATOR,))
    def reconcile(self):
        """Settle the charges and refunds whose outcome is unknown by asking the processor."""
        return self._reconcile()

    @timer("RECONCILE_INTERVAL", default=DEFAULT_RECONCILE_INTERVAL)
    def reconcile_on_timer(self):
        outcome = self._reconcile()
        if outcome["settled"]:
            log.info("reconciler settled %(settled)s of %(checked)s unconfirmed charges and refunds", outcome)

    def _reconcile(self):
        """Charges first, then refunds: `checked` and `settled` count both."""
        outcomes = (charges.reconcile(self.db, self.events, self.processors),
                    refunds.reconcile(self.db, self.events, self.processors))
        return {name: sum(outcome[name] for outcome in outcomes) for name in ("checked", "settled")}

    # -- refunds

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def request_refund(self, request):
        """Refund (part of) a merchant's order, once per request key; a repeat answers
        the first refund as it stands."""
        request = load(REFUND_REQUEST, request)
        return self._refund_view(
            refunds.request_refund(self.db, self.events, self.processors, request), request["code"])

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def list_refunds(self, merchant_id, code):
        """The refunds of the merchant's order, oldest first (NotFound for another's order)."""
        if not (isinstance(merchant_id, str) and isinstance(code, str)):
            raise NotFound("Order not found.")
        with self.db.transaction() as session:
            order = store.merchant_order(session, merchant_id, code.strip().upper())
            return [self._refund_view(refund, order.code) for refund in store.order_refunds(session, [order.id])[order.id]]

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def confirm_manual_refund(self, merchant_id, code, refund_id):
        """The merchant says it gave a `pending_manual` refund back itself: it is done."""
        if not all(isinstance(value, str) for value in (merchant_id, code, refund_id)) or len(refund_id) > 36:
            raise NotFound("Refund not found.")  # no refund has such an id
        code = code.strip().upper()
        return self._refund_view(refunds.confirm_manual(self.db, self.events, merchant_id, code, refund_id), code)

    @event_handler("subscriptions", "subscription_payment_not_applied")
    def refund_payment_not_applied(self, envelope):
        """A paid order its subscription could not take goes back to the buyer, once
        (its key is the order's: a redelivered or repeated event refunds nothing more);
        the buyer hears of it with `order_refunded`, the merchant by its webhooks."""
        event = load(PAYMENT_NOT_APPLIED, envelope)
        try:
            refunds.request_refund(self.db, self.events, self.processors, {
                "merchant_id": event["merchant_id"], "code": event["data"]["order_code"],
                "request_key": domain.not_applied_refund_key(event["data"]["order_code"]),
                "amount_cents": None, "reason": domain.NOT_APPLIED_REASON, "actor": "system",
            })
        except (NotFound, Conflict, ValidationFailed) as refused:
            # Nothing to give back here (already refunded by the merchant, say): said, not retried.
            log.warning("payment not applied %s: no refund (%s)", event["data"]["order_code"], refused)

    @rpc(expected_exceptions=EXPECTED_ERRORS, callers=(OPERATOR,))
    def list_failed_refunds(self, merchant_id=None):
        if merchant_id is not None and not isinstance(merchant_id, str):
            raise ValidationFailed("A merchant id.", fields={"merchant_id": ["Not a string."]})
        return [{**self._refund_view(refund, code), "merchant_id": refund.merchant_id}
                for refund, code in refunds.failed_refunds(self.db, merchant_id)]

    @staticmethod
    def _refund_view(refund, order_code):
        return {**REFUND.dump(refund), "order_code": order_code}

    @rpc(expected_exceptions=EXPECTED_ERRORS, sensitive_arguments=("token",))
    def get_payment_method(self, identity, token):
        identity = load(IDENTITY, identity)
        if not isinstance(token, str):
            raise NotFound("Payment method not found.")
        with self.db.transaction() as session:
            return PAYMENT_METHOD.dump(store.buyer_card(session, identity, token))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def issue_card_entry_ticket(self, request):
        """A one-time link to billing's card form for this buyer and subscription."""
        request = load(TICKET_REQUEST, request)
        ticket = card_entry.issue_ticket(
            self.db, request, int(self.config["CARD_ENTRY_TICKET_TTL_SECONDS"]), self.config["BILLING_PUBLIC_URL"],
        )
        return TICKET.dump(ticket)

    # -- processor accounts (the operator's)

    @rpc(expected_exceptions=EXPECTED_ERRORS, callers=(OPERATOR,),
         sensitive_arguments=("account.api_key", "account.webhook_token"))
    def set_processor_account(self, account):
        """Create or replace a merchant's processor account; its owners are told. An
        Asaas account given no webhook token gets one, registered with Asaas for
        `BILLING_PUBLIC_URL/callbacks/asaas/<account id>`."""
        data = load(ACCOUNT_INPUT, account)
        return self._account_view(
            accounts.put(self.db, self.events, self.processors, data, self.config["BILLING_PUBLIC_URL"]))

    @rpc(expected_exceptions=EXPECTED_ERRORS, callers=(OPERATOR,))
    def list_processor_accounts(self, merchant_id=None):
        if merchant_id is not None and not isinstance(merchant_id, str):
            raise ValidationFailed("A merchant id.", fields={"merchant_id": ["Not a string."]})
        with self.db.transaction() as session:
            return [self._account_view(row) for row in store.list_accounts(session, merchant_id)]

    def _account_view(self, row):
        """An account as the operator sees it, with the URL its processor posts events to."""
        return {**ACCOUNT.dump(row), "callback_url": accounts.callback_url(self.config["BILLING_PUBLIC_URL"], row)}

    @rpc(expected_exceptions=EXPECTED_ERRORS, callers=(OPERATOR,))
    def rotate_credential_keys(self):
        """Seal every account's credentials again with the first of BILLING_CREDENTIAL_KEYS."""
        return {"resealed": accounts.reseal_all(self.db, self.processors.box)}

    # -- HTTP (billing's own port)

    @http("GET", "/healthz")
    def healthz(self, request):
        return json_response({"status": "ok"})

    @http("GET", "/static/card.css")
    def card_stylesheet(self, request):
        return pages.stylesheet()

    @http("GET", "/card")
    def card_form(self, request):
        portal, locale = self.config["PORTAL_BASE_URL"], pages.locale_of(request)
        try:
            needs_holder, prefill = card_entry.open_form(self.db, self.processors, request.args.get("ticket"))
        except PortalError as error:
            return pages.problem_page(portal, locale, error)
        return pages.form_page(portal, locale, request.args["ticket"], needs_holder, fields=prefill)

    @http("POST", "/card", sensitive_arguments=("request",))
    def submit_card(self, request):
        ticket = request.form.get("ticket")
        fields = {name: request.form.get(name, "") for name in (*CARD_FIELDS, *domain.HOLDER_FIELDS)}
        address = client_address(request, trusted_networks(self.config["TRUSTED_PROXIES"]))
        limits = {
            "per_address": int(self.config["CARD_ENTRY_ATTEMPTS_PER_ADDRESS"]),
            "window_seconds": int(self.config["CARD_ENTRY_ADDRESS_WINDOW_SECONDS"]),
        }
        portal, locale = self.config["PORTAL_BASE_URL"], pages.locale_of(request)
        try:
            ticket_row, card = card_entry.submit_card(
                self.db, self.events, self.processors, ticket, fields, address, limits,
            )
        except card_entry.FormProblems as error:
            return pages.form_page(portal, locale, ticket, error.needs_holder, error, fields)
        except PortalError as error:
            return pages.problem_page(portal, locale, error)
        return self._apply_card(ticket_row, card, locale)

    @http("POST", "/sandbox/orders/<string:code>/pay")
    def sandbox_pay(self, request, code):
        # Anyone who reaches it marks an order paid: never served in production.
        if in_production(self.config):
            raise NotFound("Not found.")
        order = charges.pay_in_sandbox(self.db, self.events, self.processors, code.strip().upper())
        return json_response({"order": ORDER.dump(order)})

    @http("POST", "/callbacks/<string:processor_name>")
    def processor_callback(self, request, processor_name):
        if processor_name != self.processors.name:
            raise NotFound("Not found.")
        signature = request.headers.get(SIGNATURE_HEADER)
        if not domain.callback_is_signed(self.config["PROCESSOR_WEBHOOK_SECRET"], request.get_data(), signature):
            raise Unauthorized("Bad or missing signature.", code="bad_signature")
        note = load(CALLBACK, read_json(request))
        order = charges.settle_by_key(self.db, self.events, self.processors, note["idempotency_key"], processor_name)
        order = refunds.settle_pending_of(self.db, self.events, self.processors, order)
        return json_response({"code": order.code, "status": order.status})

    @http("POST", "/callbacks/asaas/<string:account_id>")
    def asaas_callback(self, request, account_id):
        """Asaas's webhook: authenticated by the account's token, answered 200 whatever
        the event (Asaas pauses the queue after 15 failures); the payment is fetched
        from Asaas before any order changes, never taken from the body."""
        outcome = accounts.asaas_event(
            self.db, self.events, self.processors, account_id, request.headers.get(accounts.ASAAS_TOKEN_HEADER),
            request.get_data(),
        )
        return json_response(outcome)

    @http("POST", "/callbacks/mercadopago/<string:account_id>")
    def mercadopago_callback(self, request, account_id):
        """Mercado Pago's notification: authenticated by its x-signature with the
        account's secret, answered 200 whatever it names; the payment is fetched from
        Mercado Pago before any order changes, never taken from the body."""
        signed = {
            "x_signature": request.headers.get("x-signature"), "x_request_id": request.headers.get("x-request-id"),
            "data_id": request.args.get("data.id"), "type": request.args.get("type"),
        }
        tolerance = float(self.config.get("MERCADOPAGO_SIGNATURE_TOLERANCE_SECONDS")
                          or DEFAULT_SIGNATURE_TOLERANCE_SECONDS)
        outcome = accounts.mercadopago_notification(self.db, self.events, self.processors, account_id, signed, tolerance)
        return json_response(outcome)

    # -- card entry

    def _apply_card(self, ticket, card, locale):
        """Make the new card the subscription's payment method; if subscriptions
        cannot, say so: the card stays saved and the buyer knows it is not in use."""
        identity = {"email": ticket.email, "merchant_id": ticket.merchant_id, "session_id": f"card-entry:{ticket.id}"}
        portal = self.config["PORTAL_BASE_URL"]
        try:
            self.subscriptions.change_payment_method(
                identity, ticket.subscription_id, {"method": "credit_card", "card_token": card.token}, actor="buyer",
            )
        except PortalError as error:
            return pages.not_applied_page(portal, locale, card, ticket.subscription_id, error)
        except RemoteError as error:
            log.error("subscriptions failed to apply a new card: %s", error.exc_type)
            failure = ServiceUnavailable(N_("O serviço de assinaturas falhou."))
            return pages.not_applied_page(portal, locale, card, ticket.subscription_id, failure)
        return pages.applied_page(portal, locale, card, ticket.subscription_id)
