"""A fake Mercado Pago (Payments API v1) for development and tests: never part of a
deployment.

It answers the requests billing's Mercado Pago adapter makes, in the shapes Mercado
Pago documents (`/work/shared/processors/mercadopago.md`), and checks what Mercado
Pago checks: the method and path, `Authorization: Bearer <access token>` (`APP_USR-…`
or `TEST-…`; any other → 401), an `X-Idempotency-Key` on every POST that makes a
payment or refund, and each required field (400 naming it). Errors come as Mercado
Pago sends them: `{message, error, status, cause: [{code, description}]}`. Each access
token is an account of its own; `seen` records the token and idempotency key of every
request. State is in memory only; card numbers and codes are never kept (a token
remembers the last four, brand, expiry and cardholder name).

Cards: any Luhn-valid number; the outcome is the cardholder name, as in Mercado Pago's
test environment: APRO approved, OTHE/CALL/FUND/SECU/EXPI/FORM refused
(`cc_rejected_*`), CONT pending (`pending_contingency`); any other name approves. A
card token is single use (a second use → 400 cause 3003). A token made from a saved
card (`{"card_id"}`) without a security code pays only on an account enabled for
payments without CVV (`automatic_payments`, on by default; off → 400 cause 3031).
A repeated idempotency key answers the payment it made first.

Notifications are posted, as Mercado Pago posts them, to the URL an account set with
its secret (`notifications(...)`, or `POST /fake/notifications {url, secret}`: what
"Your integrations" does): `POST <url>?data.id=<id>&type=payment`, signed in
`x-signature` (`ts` in milliseconds) with `x-request-id`.

What the real Mercado Pago does not have, for tests and `make run`: `script(...)`
makes the next matching requests fail (429, 500, a timeout after the work is done);
`pay(token, payment_id)` or `POST /fake/payments/<id>/pay` pays a pending pix or
boleto; a refund (full, or partial with `amount`; never more than is left) is made
`in_process` and settled by `settle_refund(token, refund_id, approve)` or `POST
/fake/refunds/<id>/approve|reject`, which notifies as Mercado Pago does (`approved`:
the payment becomes `refunded`, or `approved/partially_refunded`); `resend(delivery)` posts a notification again. Codes marked "(fake)" are this
fake's guesses where Mercado Pago documents none.

    python -m devtools.fake_mercadopago --port 8031
"""
import hashlib
import hmac
import itertools
import json
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import requests
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from devtools import fake_processor
from devtools.fake_asaas import QR_PNG, cpf_cnpj_is_valid
from services.billing.domain import card_brand, luhn_is_valid
from services.billing.processors import boleto, brcode

TOKEN_PREFIXES = ("APP_USR-", "TEST-")
BRAZIL = timezone(timedelta(hours=-3))
# Cardholder name → (status, status_detail) of the payment, as Mercado Pago's test cards.
OUTCOMES = {
    "OTHE": ("rejected", "cc_rejected_other_reason"),
    "CALL": ("rejected", "cc_rejected_call_for_authorize"),
    "FUND": ("rejected", "cc_rejected_insufficient_amount"),
    "SECU": ("rejected", "cc_rejected_bad_filled_security_code"),
    "EXPI": ("rejected", "cc_rejected_bad_filled_date"),
    "FORM": ("rejected", "cc_rejected_bad_filled_other"),
    "CONT": ("in_process", "pending_contingency"),
}
APPROVED = ("approved", "accredited")
# Our brand → Mercado Pago's payment_method_id.
METHOD_OF_BRAND = {"mastercard": "master", "visa": "visa", "amex": "amex", "elo": "elo", "hipercard": "hipercard"}
CARD_METHODS = set(METHOD_OF_BRAND.values())
# Mercado Pago's test Mastercard, whose BIN is in no public table.
TEST_CARD_METHODS = {"503143": "master"}
# Mercado Pago's documented test cards (Mastercard, Visa, Amex, Elo debit).
TEST_CARDS = ("5031433215406351", "4235647728025682", "375365153556885", "5067766783888311")
BOLETO_METHOD = "bolbradesco"
BOLETO_BANK = "237"
PIX_KEY = "fake-mercadopago@example.com"
BOLETO_ADDRESS = ("zip_code", "street_name", "street_number", "neighborhood", "city", "federal_unit")
NOTIFICATION_TIMEOUT = 5
ERRORS = {400: "bad_request", 401: "unauthorized", 404: "not_found", 429: "too_many_requests",
          500: "internal_server_error", 502: "bad_gateway", 503: "service_unavailable"}


class MercadoPagoError(Exception):
    def __init__(self, status, message, code=None):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


def refuse(message, code=None, status=400):
    raise MercadoPagoError(status, message, code)


def require(body, *names, where=""):
    for name in names:
        if body.get(name) in (None, ""):
            refuse(f"{where}{name} is required", code=1)


def amount_cents(value, name="transaction_amount"):
    try:
        cents = Decimal(str(value)) * 100
    except ArithmeticError:
        refuse(f"{name} must be a number", code=1)
    if cents <= 0 or cents != cents.to_integral_value():
        refuse(f"{name} must be positive, in cents at most", code=1)
    return int(cents)


def now():
    return datetime.now(BRAZIL)


def stamp(moment):
    return moment.isoformat(timespec="milliseconds")


def sign(secret, data_id, request_id, ts):
    """Mercado Pago's x-signature over its documented manifest."""
    manifest = f"id:{data_id};request-id:{request_id};ts:{ts};"
    return hmac.new(secret.encode("utf-8"), manifest.encode("utf-8"), hashlib.sha256).hexdigest()


@dataclass
class Account:
    """What one access token sees."""

    user_id: int
    customers: dict = field(default_factory=dict)
    tokens: dict = field(default_factory=dict)
    payments: dict = field(default_factory=dict)
    keys: dict = field(default_factory=dict)
    # Refund idempotency key → (payment id, refund id).
    refund_keys: dict = field(default_factory=dict)
    notification_url: str | None = None
    secret: str | None = None
    automatic_payments: bool = True


class FakeMercadoPago:
    def __init__(self):
        self.accounts = {}
        self.seen = []
        self.scripts = fake_processor.Scripts()
        self.deliveries = []
        self.lock = threading.RLock()
        self.ids = itertools.count(1_000_000_001)
        self.url_map = Map([
            Rule("/v1/card_tokens", methods=["POST"], endpoint="create_card_token"),
            Rule("/v1/customers/search", methods=["GET"], endpoint="search_customers"),
            Rule("/v1/customers", methods=["POST"], endpoint="create_customer"),
            Rule("/v1/customers/<customer_id>/cards", methods=["POST"], endpoint="save_card"),
            Rule("/v1/customers/<customer_id>/cards/<card_id>", methods=["GET"], endpoint="get_card"),
            Rule("/v1/payments", methods=["POST"], endpoint="create_payment"),
            Rule("/v1/payments/search", methods=["GET"], endpoint="search_payments"),
            Rule("/v1/payments/<int:payment_id>", methods=["GET"], endpoint="get_payment"),
            Rule("/v1/payments/<int:payment_id>/refunds", methods=["POST"], endpoint="refund"),
            Rule("/v1/payments/<int:payment_id>/refunds/<int:refund_id>", methods=["GET"], endpoint="get_refund"),
            Rule("/fake/refunds/<int:refund_id>/<any(approve, reject):outcome>", methods=["POST"],
                 endpoint="settle_refund_route"),
            Rule("/fake/notifications", methods=["POST"], endpoint="set_notifications"),
            Rule("/fake/payments/<int:payment_id>/pay", methods=["POST"], endpoint="pay_pending"),
        ])

    # -- what tests use

    def account(self, access_token):
        with self.lock:
            if access_token not in self.accounts:
                self.accounts[access_token] = Account(user_id=next(self.ids))
            return self.accounts[access_token]

    def script(self, method, path, status, times=1, after_work=False, delay=0.0):
        self.scripts.add(method, path, status, times, after_work, delay)

    def notifications(self, access_token, url, secret):
        with self.lock:
            account = self.account(access_token)
            account.notification_url, account.secret = url, secret

    def payments_of(self, access_token, external_reference=None):
        return [payment for payment in self.account(access_token).payments.values()
                if external_reference is None or payment["external_reference"] == external_reference]

    def pay(self, access_token, payment_id):
        """The buyer pays a pending pix or boleto."""
        with self.lock:
            payment = self.account(access_token).payments[int(payment_id)]
            if payment["status"] != "pending":
                refuse("Only a pending payment can be paid. (fake)")
            moment = stamp(now())
            payment.update(status="approved", status_detail="accredited", date_approved=moment,
                           date_last_updated=moment)
        self._notify(access_token, "payment.updated", payment)
        return payment

    def resend(self, delivery):
        """Post a notification again (Mercado Pago retries until answered 200/201)."""
        self._post(delivery["token"], delivery["action"], delivery["payment"])

    # -- WSGI

    def __call__(self, environ, start_response):
        request = Request(environ)
        try:
            response = self._dispatch(request)
        except MercadoPagoError as error:
            response = self._error(error.status, error.message, error.code)
        except HTTPException as error:
            response = self._error(error.code, "resource not found")
        return response(environ, start_response)

    @staticmethod
    def _json(payload, status=200):
        return Response(json.dumps(payload), status=status, mimetype="application/json")

    def _error(self, status, message, code=None):
        cause = [{"code": code, "description": message, "data": None}] if code is not None else []
        return self._json({"message": message, "error": ERRORS.get(status, "error"), "status": status,
                           "cause": cause}, status)

    def _dispatch(self, request):
        endpoint, arguments = self.url_map.bind_to_environ(request.environ).match()
        authorization = request.headers.get("Authorization", "")
        access_token = authorization[len("Bearer "):] if authorization.startswith("Bearer ") else ""
        with self.lock:
            self.seen.append((request.method, request.path, access_token, request.headers.get("X-Idempotency-Key")))
        if not access_token.startswith(TOKEN_PREFIXES) or len(access_token) < len(TOKEN_PREFIXES[0]) + 8:
            refuse("invalid access token", code=2, status=401)
        body = {}
        if request.method == "POST":
            try:
                body = json.loads(request.get_data() or b"{}")
            except ValueError:
                refuse("the body is not valid JSON (fake)", code=1)
            if not isinstance(body, dict):
                refuse("the body must be a JSON object (fake)", code=1)
        script = self.scripts.take(request.method, request.path)
        if script is not None and not script.after_work:
            return self._scripted(script)
        with self.lock:
            status, answer = getattr(self, endpoint)(self.account(access_token), access_token, request, body,
                                                     **arguments)
        if script is not None:
            return self._scripted(script)
        return self._json(answer, status)

    def _scripted(self, script):
        if script.status == "timeout":
            time.sleep(script.delay)
            return self._error(504, "late (fake)")
        return self._error(script.status, {429: "too many requests"}.get(script.status, "internal error"))

    # -- card tokens

    def create_card_token(self, account, access_token, request, body):
        token_id = secrets.token_hex(16)
        created = now()
        if body.get("card_id"):
            card = self._card(account, None, str(body["card_id"]))
            token = {**card["token"], "card_id": card["id"], "with_security_code": bool(body.get("security_code"))}
        else:
            require(body, "card_number", "expiration_month", "expiration_year", "security_code", "cardholder")
            require(body["cardholder"], "name", where="cardholder.")
            number = str(body["card_number"])
            if not (re.fullmatch(r"\d{13,19}", number) and luhn_is_valid(number)):
                refuse("invalid card_number (fake)", code="E301")
            if not re.fullmatch(r"\d{3,4}", str(body["security_code"])):
                refuse("invalid security_code (fake)", code="E302")
            method = TEST_CARD_METHODS.get(number[:6]) or METHOD_OF_BRAND.get(card_brand(number), "unknown")
            token = {"first_six_digits": number[:6], "last_four_digits": number[-4:],
                     "expiration_month": int(body["expiration_month"]), "expiration_year": int(body["expiration_year"]),
                     "payment_method_id": method,
                     "cardholder": {"name": str(body["cardholder"]["name"]),
                                    "identification": body["cardholder"].get("identification")},
                     "card_id": None, "with_security_code": True}
        account.tokens[token_id] = {**token, "used": False}
        return 201, {"id": token_id, "status": "active", "luhn_validation": True, "live_mode": False,
                     "date_created": stamp(created), "date_due": stamp(created + timedelta(hours=2)),
                     **{name: token[name] for name in ("first_six_digits", "last_four_digits", "expiration_month",
                                                       "expiration_year", "cardholder")}}

    def _use_token(self, account, token_id):
        """The token, spent: a card token is single use."""
        token = account.tokens.get(str(token_id))
        if token is None:
            refuse("Card Token not found", code=2006)
        if token["used"]:
            refuse("Invalid card_token_id", code=3003)
        token["used"] = True
        return token

    # -- customers and cards

    def search_customers(self, account, access_token, request, body):
        found = [customer for customer in account.customers.values()
                 if customer["email"] == request.args.get("email", customer["email"])]
        return 200, {"paging": {"limit": 10, "offset": 0, "total": len(found)}, "results": found[:10]}

    def create_customer(self, account, access_token, request, body):
        require(body, "email")
        if any(customer["email"] == body["email"] for customer in account.customers.values()):
            refuse("the customer already exist.", code=101)
        customer_id = f"{account.user_id}-{secrets.token_hex(7)}"
        account.customers[customer_id] = {
            "id": customer_id, "email": body["email"], "first_name": body.get("first_name"),
            "last_name": body.get("last_name"), "identification": body.get("identification"),
            "date_created": stamp(now()), "cards": [], "live_mode": False,
        }
        return 201, account.customers[customer_id]

    def _customer(self, account, customer_id):
        if customer_id not in account.customers:
            refuse("the customer id is invalid.", code=105, status=404)
        return account.customers[customer_id]

    def save_card(self, account, access_token, request, body, customer_id):
        customer = self._customer(account, customer_id)
        require(body, "token")
        token = self._use_token(account, body["token"])
        card_id = str(next(self.ids))
        card = {
            "id": card_id, "customer_id": customer_id, "user_id": account.user_id,
            "first_six_digits": token["first_six_digits"], "last_four_digits": token["last_four_digits"],
            "expiration_month": token["expiration_month"], "expiration_year": token["expiration_year"],
            "payment_method": {"id": token["payment_method_id"], "name": token["payment_method_id"],
                               "payment_type_id": "credit_card"},
            "issuer": {"id": 24, "name": token["payment_method_id"]}, "cardholder": token["cardholder"],
            "security_code": {"length": 3, "card_location": "back"}, "date_created": stamp(now()),
            "live_mode": False, "token": {key: value for key, value in token.items() if key != "used"},
        }
        customer["cards"].append(card)
        return 201, {key: value for key, value in card.items() if key != "token"}

    def _card(self, account, customer_id, card_id):
        for customer in account.customers.values():
            for card in customer["cards"]:
                if card["id"] == card_id and customer_id in (None, customer["id"]):
                    return card
        refuse("card not found.", code=120, status=404)

    def get_card(self, account, access_token, request, body, customer_id, card_id):
        self._customer(account, customer_id)
        return 200, {key: value for key, value in self._card(account, customer_id, card_id).items() if key != "token"}

    # -- payments

    def create_payment(self, account, access_token, request, body):
        key = request.headers.get("X-Idempotency-Key")
        if not key or len(key) > 64:
            refuse("X-Idempotency-Key header is required, 1 to 64 characters (fake)", code=1)
        if key in account.keys:
            return 201, account.payments[account.keys[key]]
        require(body, "transaction_amount", "payment_method_id", "payer")
        cents = amount_cents(body["transaction_amount"])
        method, payer = str(body["payment_method_id"]), body["payer"]
        if not isinstance(payer, dict):
            refuse("payer must be an object", code=1)
        as_customer = payer.get("type") == "customer"
        if as_customer:
            require(payer, "id", where="payer.")
            customer = self._customer(account, payer["id"])
            payer = {**payer, "email": customer["email"]}
        else:
            require(payer, "email", where="payer.")
        created = now()
        payment = {
            "id": next(self.ids), "date_created": stamp(created), "date_last_updated": stamp(created),
            "date_approved": None, "money_release_date": None, "payment_method_id": method, "issuer_id": None,
            "currency_id": "BRL", "description": body.get("description"),
            "external_reference": body.get("external_reference"), "transaction_amount": float(Decimal(cents) / 100),
            "transaction_amount_refunded": 0, "installments": 1, "captured": True, "live_mode": False,
            "metadata": body.get("metadata") or {}, "card": {}, "refunds": [], "date_of_expiration": None,
            "payer": {"id": payer.get("id"), "email": payer["email"], "identification": payer.get("identification"),
                      "type": payer.get("type")},
            "transaction_details": {"net_received_amount": 0, "total_paid_amount": float(Decimal(cents) / 100),
                                    "installment_amount": float(Decimal(cents) / 100), "external_resource_url": None,
                                    "digitable_line": None, "barcode": None},
            "point_of_interaction": {},
        }
        if method in CARD_METHODS:
            self._card_payment(account, payment, body, cents, as_customer)
        elif method == "pix":
            self._pix_payment(payment, cents, body)
        elif method == BOLETO_METHOD:
            self._boleto_payment(payment, cents, body)
        else:
            refuse(f"payment_method_id {method} is not accepted (fake)", code=4050)
        account.payments[payment["id"]] = payment
        account.keys[key] = payment["id"]
        self._notify(access_token, "payment.created", payment)
        return 201, payment

    def _card_payment(self, account, payment, body, cents, as_customer):
        require(body, "token", "installments")
        installments = body["installments"]
        if not isinstance(installments, int) or not 1 <= installments <= 12:
            refuse("Invalid installments (fake)", code=1)
        token = self._use_token(account, body["token"])
        if token["payment_method_id"] != body["payment_method_id"]:
            refuse("payment_method_id does not match the card (fake)", code=2060)
        if token["card_id"] and not token["with_security_code"]:
            if not account.automatic_payments:
                refuse("security_code_id cant be null", code=3031)
            if not as_customer or self._card(account, body["payer"]["id"], token["card_id"]) is None:
                refuse("a saved card is paid by its customer (fake)", code=2034)
        status, detail = OUTCOMES.get(token["cardholder"]["name"].strip().upper(), APPROVED)
        payment.update(
            status=status, status_detail=detail, payment_type_id="credit_card", installments=installments,
            issuer_id=str(body.get("issuer_id") or 24), date_approved=payment["date_created"] if status == "approved" else None,
            card={"first_six_digits": token["first_six_digits"], "last_four_digits": token["last_four_digits"],
                  "expiration_month": token["expiration_month"], "expiration_year": token["expiration_year"],
                  "cardholder": token["cardholder"], "id": token["card_id"]},
        )
        payment["transaction_details"]["installment_amount"] = float(Decimal(cents) / 100 / installments)

    def _pix_payment(self, payment, cents, body):
        expires = now() + timedelta(hours=24)
        txid = f"MP{payment['id']}"[:brcode.MAX_TXID]
        payment.update(
            status="pending", status_detail="pending_waiting_transfer", payment_type_id="bank_transfer",
            date_of_expiration=body.get("date_of_expiration") or stamp(expires),
            point_of_interaction={"type": "PIX", "transaction_data": {
                "qr_code": brcode.pix_code(PIX_KEY, cents, "FAKE MERCADO PAGO", "OSASCO", txid),
                "qr_code_base64": QR_PNG,
                "ticket_url": f"https://www.mercadopago.com.br/payments/{payment['id']}/ticket?caller_id=fake"}},
        )

    def _boleto_payment(self, payment, cents, body):
        payer = body["payer"]
        require(payer, "first_name", "last_name", "identification", "address", where="payer.")
        identification = payer["identification"]
        require(identification, "type", "number", where="payer.identification.")
        if not cpf_cnpj_is_valid(str(identification["number"])):
            refuse("Invalid identification number", code=2067)
        require(payer["address"], *BOLETO_ADDRESS, where="payer.address.")
        if body.get("date_of_expiration"):
            expires = datetime.fromisoformat(str(body["date_of_expiration"]))
        else:
            expires = now() + timedelta(days=3)
        code = boleto.barcode(BOLETO_BANK, cents, expires.date(), f"{payment['id']:025d}")
        payment.update(
            status="pending", status_detail="pending_waiting_payment", payment_type_id="ticket",
            date_of_expiration=stamp(expires), payment_method_reference_id=str(payment["id"]),
        )
        payment["payer"]["identification"] = identification
        payment["transaction_details"].update(
            external_resource_url=f"https://www.mercadopago.com.br/payments/{payment['id']}/ticket?caller_id=fake",
            digitable_line=boleto.line_from_barcode(code), barcode={"content": code},
        )

    def search_payments(self, account, access_token, request, body):
        found = [payment for payment in account.payments.values()
                 if all(str(payment.get(name)) == request.args[name] for name in ("external_reference", "status")
                        if name in request.args)]
        found.sort(key=lambda payment: payment["id"], reverse=request.args.get("criteria") == "desc")
        offset, limit = int(request.args.get("offset", 0)), min(int(request.args.get("limit", 30)), 1000)
        return 200, {"paging": {"total": len(found), "limit": limit, "offset": offset},
                     "results": found[offset:offset + limit]}

    def _payment(self, account, payment_id):
        if payment_id not in account.payments:
            refuse("Payment not found", code=2000, status=404)
        return account.payments[payment_id]

    def get_payment(self, account, access_token, request, body, payment_id):
        return 200, self._payment(account, payment_id)

    def refund(self, account, access_token, request, body, payment_id):
        key = request.headers.get("X-Idempotency-Key")
        if not key:
            refuse("X-Idempotency-Key header is required (fake)", code=1)
        if key in account.refund_keys:
            made_for, refund_id = account.refund_keys[key]
            return 201, self._refund(account, made_for, refund_id)
        payment = self._payment(account, payment_id)
        if payment["status"] != "approved":
            refuse("Payment not refundable (fake)", code=2063)
        given = sum(amount_cents(made["amount"], "amount") for made in payment["refunds"] if made["status"] != "rejected")
        left = amount_cents(payment["transaction_amount"]) - given
        cents = amount_cents(body["amount"], "amount") if (body or {}).get("amount") is not None else left
        if cents > left:
            refuse("The amount is greater than what can be refunded (fake)", code=2069)
        refund = {"id": next(self.ids), "payment_id": payment_id, "amount": float(Decimal(cents) / 100),
                  "status": "in_process", "refund_mode": "standard", "date_created": stamp(now())}
        payment["refunds"].append(refund)
        account.refund_keys[key] = (payment_id, refund["id"])
        return 201, refund

    def _refund(self, account, payment_id, refund_id):
        for refund in self._payment(account, payment_id)["refunds"]:
            if refund["id"] == refund_id:
                return refund
        refuse("Refund not found (fake)", code=2000, status=404)

    def get_refund(self, account, access_token, request, body, payment_id, refund_id):
        return 200, self._refund(account, payment_id, refund_id)

    def settle_refund(self, access_token, refund_id, approve=True):
        """The bank's answer to an `in_process` refund; an approved one refunds the payment
        (wholly or partly), and the account is notified either way."""
        with self.lock:
            account = self.account(access_token)
            [payment] = [payment for payment in account.payments.values()
                         if any(refund["id"] == int(refund_id) for refund in payment["refunds"])] or [None]
            if payment is None:
                refuse("Refund not found (fake)", code=2000, status=404)
            refund = self._refund(account, payment["id"], int(refund_id))
            refund["status"] = "approved" if approve else "rejected"
            refunded = sum(amount_cents(made["amount"], "amount") for made in payment["refunds"]
                           if made["status"] == "approved")
            full = refunded >= amount_cents(payment["transaction_amount"])
            payment.update(transaction_amount_refunded=float(Decimal(refunded) / 100), date_last_updated=stamp(now()))
            if refunded:
                payment.update(status="refunded" if full else "approved",
                               status_detail="refunded" if full else "partially_refunded")
        self._notify(access_token, "payment.updated", payment)
        return refund

    def settle_refund_route(self, account, access_token, request, body, refund_id, outcome):
        return 200, self.settle_refund(access_token, refund_id, outcome == "approve")

    # -- what "Your integrations" and a paying buyer do (the fake's own)

    def set_notifications(self, account, access_token, request, body):
        require(body, "url", "secret")
        account.notification_url, account.secret = str(body["url"]), str(body["secret"])
        return 200, {"url": account.notification_url}

    def pay_pending(self, account, access_token, request, body, payment_id):
        self._payment(account, payment_id)
        return 200, self.pay(access_token, payment_id)

    # -- notifications

    def _notify(self, access_token, action, payment):
        threading.Thread(target=self._post, args=(access_token, action, dict(payment)), daemon=True).start()

    def _post(self, access_token, action, payment):
        with self.lock:
            account = self.account(access_token)
            url, secret, user_id = account.notification_url, account.secret, account.user_id
        if not url:
            return
        data_id, request_id = str(payment["id"]), str(uuid.uuid4())
        ts = str(int(time.time() * 1000))
        body = {"action": action, "api_version": "v1", "data": {"id": data_id}, "date_created": stamp(now()),
                "id": next(self.ids), "live_mode": False, "type": "payment", "user_id": user_id}
        headers = {"x-signature": f"ts={ts},v1={sign(secret, data_id, request_id, ts)}", "x-request-id": request_id,
                   "x-retry": "0", "Content-Type": "application/json"}
        try:
            status = requests.post(url, params={"data.id": data_id, "type": "payment"}, json=body, headers=headers,
                                   timeout=NOTIFICATION_TIMEOUT).status_code
        except requests.RequestException as error:
            status = type(error).__name__
        with self.lock:
            self.deliveries.append({"token": access_token, "action": action, "payment": payment,
                                    "status": status, "url": url})


def serve(port):
    return make_server("127.0.0.1", port, FakeMercadoPago(), threaded=True)


class Running(fake_processor.Running):
    """The fake served on 127.0.0.1:`port` (0: a free one) in a thread, until `stop()`."""

    def __init__(self, port=0):
        super().__init__(serve(port))


def main(argv=None):
    fake_processor.main(argv, "fake-mercadopago", __doc__.split("\n\n")[0], serve, 8031)


if __name__ == "__main__":
    main()
