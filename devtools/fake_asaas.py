"""A fake Asaas (API v3) for development and tests: never part of a deployment.

It answers the requests billing's Asaas adapter makes, in the shapes Asaas documents
(`/work/shared/processors/asaas.md`), and checks what Asaas checks: the method and
path, an `access_token` (`$aact_hmlg_…` or `$aact_prod_…`; any other → 401
`invalid_access_token`), a `User-Agent`, no body on a GET (403) and each required
field (400 naming it), a valid CPF/CNPJ and, for a card, the buyer's IP address in
`remoteIp`. Each API key is an account of its own: it sees only its own
customers, tokens, payments and webhooks, and `seen` records which key every request
carried. State is in memory only; card numbers and codes are never kept (a token
remembers its last four, brand and whether its test card is refused).

Asaas's sandbox cards: 4444 4444 4444 4444 is approved; 5184 0197 4037 3151 and 4916 5612 4024 0741 are refused when
charged; any Luhn-valid number is approved. Payment events are posted, like
Asaas posts them (`{id, event, dateCreated, payment}` with `asaas-access-token`), to
every webhook the key registered (`POST /v3/webhooks`). `POST
/v3/sandbox/payment/{id}/confirm` pays a pending boleto or pix, as in Asaas's sandbox.

What the real Asaas does not have, for tests and `make run`: `script(...)` (in
process) makes the next matching requests fail (429, 500, a timeout after the work is
done); `tokenization_enabled`; `resend(event_id)` posts an event again. A refund
(full, or partial with `value`; never more than is left) is `PENDING` until
`settle_refund(key, payment_id, description, done)` or `POST
/fake/payments/<id>/refunds/<description>/done|cancel` settles it: done, the payment
becomes `REFUNDED` when its refunds add up to it (`PAYMENT_REFUNDED`, else
`PAYMENT_PARTIALLY_REFUNDED`). Codes marked
"(fake)" below are this fake's guesses where Asaas documents none.

    python -m devtools.fake_asaas --port 8030
"""
import base64
import ipaddress
import itertools
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import requests
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from devtools import fake_processor
from services.billing.domain import card_brand, luhn_is_valid
from services.billing.processors import boleto, brcode
from services.common.documents import document_key

KEY_PREFIXES = ("$aact_hmlg_", "$aact_prod_")
REFUSED_CARDS = {"5184019740373151", "4916561358240741"}
# Asaas's sandbox approves this one although it fails the Luhn check.
APPROVED_TEST_CARD = "4444444444444444"
ASAAS_BANK = "461"
PIX_KEY = "fake-asaas@example.com"
# A 1×1 transparent PNG: the QR image Asaas sends is a PNG in base64 too.
QR_PNG = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63000100000500010d0a2db40000000049454e44ae426082")).decode()
BILLING_TYPES = ("UNDEFINED", "BOLETO", "CREDIT_CARD", "PIX")
WEBHOOK_TIMEOUT = 5


class AsaasError(Exception):
    def __init__(self, status, code, description):
        super().__init__(description)
        self.status, self.code, self.description = status, code, description


def refuse(code, description, status=400):
    raise AsaasError(status, code, description)


def require(body, *names, where=""):
    for name in names:
        if body.get(name) in (None, ""):
            refuse("invalid_value", f"O campo {where}{name} deve ser informado.")


def cpf_cnpj_is_valid(text):
    """A CPF or CNPJ with its check digits, unpunctuated."""
    try:
        return document_key(text) == text
    except ValueError:
        return False


def value_cents(value, name):
    try:
        cents = Decimal(str(value)) * 100
    except ArithmeticError:
        refuse("invalid_value", f"O campo {name} é inválido.")
    if cents <= 0 or cents != cents.to_integral_value():
        refuse("invalid_value", f"O campo {name} é inválido.")
    return int(cents)


def as_value(cents):
    return float(Decimal(cents) / 100)


def now_text():
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class Account:
    """What one API key sees."""

    customers: dict = field(default_factory=dict)
    tokens: dict = field(default_factory=dict)
    payments: dict = field(default_factory=dict)
    webhooks: list = field(default_factory=list)
    tokenization_enabled: bool = True


class FakeAsaas:
    def __init__(self):
        self.accounts = {}
        self.seen = []
        self.scripts = fake_processor.Scripts()
        self.deliveries = []
        self.events = {}
        self.lock = threading.RLock()
        self.ids = itertools.count(1)
        self.url_map = Map([
            Rule("/v3/customers", methods=["GET"], endpoint="list_customers"),
            Rule("/v3/customers", methods=["POST"], endpoint="create_customer"),
            Rule("/v3/customers/<customer_id>", methods=["GET"], endpoint="get_customer"),
            Rule("/v3/creditCard/tokenizeCreditCard", methods=["POST"], endpoint="tokenize"),
            Rule("/v3/payments", methods=["GET"], endpoint="list_payments"),
            Rule("/v3/payments", methods=["POST"], endpoint="create_payment"),
            Rule("/v3/payments/<payment_id>", methods=["GET"], endpoint="get_payment"),
            Rule("/v3/payments/<payment_id>/identificationField", methods=["GET"], endpoint="identification_field"),
            Rule("/v3/payments/<payment_id>/pixQrCode", methods=["GET"], endpoint="pix_qr_code"),
            Rule("/v3/payments/<payment_id>/refund", methods=["POST"], endpoint="refund"),
            Rule("/v3/payments/<payment_id>/refunds", methods=["GET"], endpoint="list_refunds"),
            Rule("/fake/payments/<payment_id>/refunds/<description>/<any(done, cancel):outcome>", methods=["POST"],
                 endpoint="settle_refund_route"),
            Rule("/v3/webhooks", methods=["GET"], endpoint="list_webhooks"),
            Rule("/v3/webhooks", methods=["POST"], endpoint="create_webhook"),
            Rule("/v3/sandbox/payment/<payment_id>/confirm", methods=["POST"], endpoint="sandbox_confirm"),
        ])

    # -- what tests use

    def account(self, api_key):
        with self.lock:
            return self.accounts.setdefault(api_key, Account())

    def script(self, method, path, status, times=1, after_work=False, delay=0.0):
        self.scripts.add(method, path, status, times, after_work, delay)

    def payments_of(self, api_key, external_reference=None):
        return [payment for payment in self.account(api_key).payments.values()
                if external_reference is None or payment["externalReference"] == external_reference]

    def keys_seen(self, path_prefix="/v3/"):
        return {key for _method, path, key in self.seen if path.startswith(path_prefix)}

    def resend(self, event_id):
        """Post an event again, as Asaas does (same `id`): at least once."""
        api_key, event = self.events[event_id]
        self._post_event(api_key, event)

    def confirm(self, api_key, payment_id):
        """What `POST /v3/sandbox/payment/{id}/confirm` does: the buyer paid."""
        with self.lock:
            payment = self.account(api_key).payments[payment_id]
            payment.update(status="RECEIVED", paymentDate=date.today().isoformat(),
                           clientPaymentDate=date.today().isoformat())
        self._announce(api_key, "PAYMENT_RECEIVED", payment)
        return payment

    # -- WSGI

    def __call__(self, environ, start_response):
        request = Request(environ)
        try:
            response = self._dispatch(request)
        except AsaasError as error:
            response = self._json({"errors": [{"code": error.code, "description": error.description}]}, error.status)
        except HTTPException as error:
            response = self._json({"errors": [{"code": "not_found", "description": error.description}]}, error.code)
        return response(environ, start_response)

    @staticmethod
    def _json(payload, status=200):
        return Response(json.dumps(payload), status=status, mimetype="application/json")

    def _dispatch(self, request):
        endpoint, arguments = self.url_map.bind_to_environ(request.environ).match()
        api_key = request.headers.get("access_token", "")
        with self.lock:
            self.seen.append((request.method, request.path, api_key))
        if not api_key.startswith(KEY_PREFIXES) or len(api_key) < len(KEY_PREFIXES[0]) + 8:
            refuse("invalid_access_token", "A chave de API fornecida é inválida", status=401)
        if not request.headers.get("User-Agent"):
            refuse("invalid_user_agent", "Informe o cabeçalho User-Agent. (fake)")
        if request.method == "GET" and request.get_data():
            refuse("forbidden", "GET requests must not have a body.", status=403)
        body = {}
        if request.method == "POST":
            try:
                body = json.loads(request.get_data() or b"{}")
            except ValueError:
                refuse("invalid_value", "O corpo da requisição não é JSON válido. (fake)")
            if not isinstance(body, dict):
                refuse("invalid_value", "O corpo da requisição deve ser um objeto. (fake)")
        script = self.scripts.take(request.method, request.path)
        if script is not None and not script.after_work:
            return self._scripted(script)
        with self.lock:
            answer = getattr(self, endpoint)(self.account(api_key), api_key, request, body, **arguments)
        if script is not None:
            return self._scripted(script)
        return self._json(answer)

    def _scripted(self, script):
        if script.status == "timeout":
            time.sleep(script.delay)
            return self._json({"errors": [{"code": "timeout", "description": "late (fake)"}]}, 504)
        descriptions = {429: "Limite de requisições atingido.", 500: "Erro interno."}
        return self._json({"errors": [{"code": f"http_{script.status}",
                                       "description": descriptions.get(script.status, "fake")}]}, script.status)

    def _new_id(self, prefix):
        return f"{prefix}_{next(self.ids):06d}{secrets.token_hex(4)}"

    # -- customers

    def list_customers(self, account, api_key, request, body):
        found = [customer for customer in account.customers.values()
                 if all(customer.get(name) == request.args[name] for name in ("cpfCnpj", "email", "externalReference")
                        if name in request.args)]
        return self._page(found, request)

    @staticmethod
    def _page(items, request):
        offset, limit = int(request.args.get("offset", 0)), min(int(request.args.get("limit", 10)), 100)
        return {"object": "list", "hasMore": offset + limit < len(items), "totalCount": len(items),
                "limit": limit, "offset": offset, "data": items[offset:offset + limit]}

    def get_customer(self, account, api_key, request, body, customer_id):
        if customer_id not in account.customers:
            raise NotFound("Cliente não encontrado.")
        return account.customers[customer_id]

    def create_customer(self, account, api_key, request, body):
        require(body, "name", "cpfCnpj")
        if not cpf_cnpj_is_valid(str(body["cpfCnpj"])):
            refuse("invalid_cpfCnpj", "O CPF/CNPJ informado é inválido.")
        customer = {
            "object": "customer", "id": self._new_id("cus"), "dateCreated": date.today().isoformat(),
            "name": body["name"], "cpfCnpj": body["cpfCnpj"], "email": body.get("email"),
            "phone": body.get("phone"), "mobilePhone": body.get("mobilePhone"), "postalCode": body.get("postalCode"),
            "addressNumber": body.get("addressNumber"), "externalReference": body.get("externalReference"),
            "notificationDisabled": bool(body.get("notificationDisabled")), "deleted": False,
            "personType": "FISICA" if len(body["cpfCnpj"]) == 11 else "JURIDICA",
        }
        account.customers[customer["id"]] = customer
        return customer

    # -- cards

    def tokenize(self, account, api_key, request, body):
        require(body, "customer", "creditCard", "creditCardHolderInfo", "remoteIp")
        if body["customer"] not in account.customers:
            refuse("invalid_customer", "Cliente inexistente.")
        if not account.tokenization_enabled:
            refuse("invalid_action", "A tokenização de cartão não está habilitada para sua conta. (fake)")
        card, holder = body["creditCard"], body["creditCardHolderInfo"]
        require(card, "holderName", "number", "expiryMonth", "expiryYear", "ccv", where="creditCard.")
        require(holder, "name", "email", "cpfCnpj", "postalCode", "addressNumber", "phone",
                where="creditCardHolderInfo.")
        if not cpf_cnpj_is_valid(str(holder["cpfCnpj"])):
            refuse("invalid_cpfCnpj", "O CPF/CNPJ do titular é inválido.")
        try:
            # The buyer's IP address, which Asaas requires with card data.
            ipaddress.ip_address(str(body["remoteIp"]))
        except ValueError:
            refuse("invalid_remoteIp", "Informe o IP do comprador em remoteIp. (fake)")
        number = str(card["number"])
        if not (re.fullmatch(r"\d{13,19}", number) and (luhn_is_valid(number) or number == APPROVED_TEST_CARD)):
            refuse("invalid_creditCard", "Número do cartão de crédito inválido.")
        if not (re.fullmatch(r"\d{2}", str(card["expiryMonth"])) and re.fullmatch(r"\d{4}", str(card["expiryYear"]))):
            refuse("invalid_creditCard", "Validade do cartão inválida: mês com 2 dígitos e ano com 4.")
        token = secrets.token_hex(16)
        brand = (card_brand(number) or "unknown").upper()
        # What tests may look at: the holder and the buyer's IP as sent, never the card's number or code.
        account.tokens[token] = {"customer": body["customer"], "last4": number[-4:], "brand": brand,
                                 "refused": number in REFUSED_CARDS, "holder": dict(holder),
                                 "remoteIp": body["remoteIp"]}
        return {"creditCardNumber": number[-4:], "creditCardBrand": brand, "creditCardToken": token}

    # -- payments

    def create_payment(self, account, api_key, request, body):
        require(body, "customer", "billingType", "dueDate")
        if body["billingType"] not in BILLING_TYPES:
            refuse("invalid_billingType", "Forma de pagamento inválida.")
        if body["customer"] not in account.customers:
            refuse("invalid_customer", "Cliente inexistente.")
        date.fromisoformat(body["dueDate"])
        count = int(body.get("installmentCount") or 1)
        if count > 1:
            if body.get("totalValue") is None and body.get("installmentValue") is None:
                refuse("invalid_value", "Informe totalValue ou installmentValue.")
            total = (value_cents(body["totalValue"], "totalValue") if body.get("totalValue") is not None
                     else value_cents(body["installmentValue"], "installmentValue") * count)
        else:
            require(body, "value")
            total = value_cents(body["value"], "value")
        card = None
        if body["billingType"] == "CREDIT_CARD":
            if body.get("creditCardToken"):
                card = account.tokens.get(body["creditCardToken"])
                if card is None or card["customer"] != body["customer"]:
                    refuse("invalid_creditCard", "Token de cartão inválido para este cliente.")
                if card["refused"]:
                    # A refused card charge is not stored (Asaas answers 400, nothing kept).
                    refuse("invalid_creditCard", "Transação não autorizada. Verifique os dados do cartão.")
            elif body.get("creditCard"):
                refuse("invalid_creditCard", "This fake takes cards by token only. (fake)")
        installment = self._new_id("ins") if count > 1 else None
        share, rest = divmod(total, count)
        created = []
        for number in range(1, count + 1):
            cents = share + (rest if number == 1 else 0)
            due = date.fromisoformat(body["dueDate"]) + timedelta(days=30 * (number - 1))
            payment_id = self._new_id("pay")
            payment = {
                "object": "payment", "id": payment_id, "dateCreated": date.today().isoformat(),
                "customer": body["customer"], "installment": installment,
                "installmentNumber": number if installment else None, "value": as_value(cents),
                "netValue": as_value(cents), "description": body.get("description"),
                "billingType": body["billingType"], "status": "CONFIRMED" if card else "PENDING",
                "dueDate": due.isoformat(), "originalDueDate": due.isoformat(),
                "paymentDate": None, "externalReference": body.get("externalReference"), "deleted": False,
                "invoiceUrl": f"https://sandbox.asaas.com/i/{payment_id}",
                "bankSlipUrl": f"https://sandbox.asaas.com/b/pdf/{payment_id}" if body["billingType"] == "BOLETO" else None,
                "creditCard": {"creditCardNumber": card["last4"], "creditCardBrand": card["brand"],
                               "creditCardToken": body["creditCardToken"]} if card else None,
                "refunds": None,
            }
            account.payments[payment_id] = payment
            created.append(payment)
        for payment in created:
            self._announce(api_key, "PAYMENT_CREATED", payment)
            if card:
                self._announce(api_key, "PAYMENT_CONFIRMED", payment)
        return created[0]

    def list_payments(self, account, api_key, request, body):
        found = [payment for payment in account.payments.values()
                 if all(str(payment.get(name)) == request.args[name]
                        for name in ("externalReference", "customer", "status", "billingType") if name in request.args)]
        return self._page(found, request)

    def _payment(self, account, payment_id):
        if payment_id not in account.payments:
            raise NotFound("Cobrança não encontrada.")
        return account.payments[payment_id]

    def get_payment(self, account, api_key, request, body, payment_id):
        return self._payment(account, payment_id)

    def identification_field(self, account, api_key, request, body, payment_id):
        payment = self._payment(account, payment_id)
        if payment["billingType"] != "BOLETO":
            refuse("invalid_action", "Esta cobrança não é um boleto.")
        free_field = f"{int(payment_id.encode().hex(), 16) % 10 ** boleto.FREE_FIELD_DIGITS:025d}"
        code = boleto.barcode(ASAAS_BANK, value_cents(payment["value"], "value"),
                              date.fromisoformat(payment["dueDate"]), free_field)
        return {"identificationField": boleto.line_from_barcode(code), "nossoNumero": free_field[-8:], "barCode": code}

    def pix_qr_code(self, account, api_key, request, body, payment_id):
        payment = self._payment(account, payment_id)
        txid = re.sub(r"[^A-Za-z0-9]", "", payment_id)[:brcode.MAX_TXID]
        return {"encodedImage": QR_PNG,
                "payload": brcode.pix_code(PIX_KEY, value_cents(payment["value"], "value"), "FAKE ASAAS", "JOINVILLE", txid),
                "expirationDate": f"{payment['dueDate']} 23:59:59", "description": None}

    def refund(self, account, api_key, request, body, payment_id):
        payment = self._payment(account, payment_id)
        if payment["status"] not in ("CONFIRMED", "RECEIVED"):
            refuse("invalid_action", "Só cobranças recebidas ou confirmadas podem ser estornadas.")
        refunds = payment["refunds"] = payment["refunds"] or []
        left = value_cents(payment["value"], "value") - sum(
            value_cents(made["value"], "value") for made in refunds if made["status"] != "CANCELLED")
        cents = value_cents(body["value"], "value") if (body or {}).get("value") is not None else left
        if cents > left:
            refuse("invalid_value", "O valor do estorno excede o valor disponível da cobrança.")
        refunds.append({"dateCreated": date.today().isoformat(), "status": "PENDING", "value": as_value(cents),
                        "description": (body or {}).get("description"), "endToEndIdentifier": None,
                        "effectiveDate": None, "transactionReceiptUrl": None})
        return payment

    def list_refunds(self, account, api_key, request, body, payment_id):
        return self._page(self._payment(account, payment_id)["refunds"] or [], request)

    def settle_refund(self, api_key, payment_id, description, done=True):
        """The bank's answer to a pending refund (the one with `description`)."""
        with self.lock:
            payment = self._payment(self.account(api_key), payment_id)
            [refund] = [made for made in payment["refunds"] or [] if made["description"] == description] or [None]
            if refund is None or refund["status"] != "PENDING":
                refuse("invalid_action", "Estorno não encontrado ou já concluído. (fake)")
            refund.update(status="DONE" if done else "CANCELLED", effectiveDate=date.today().isoformat())
            refunded = sum(value_cents(made["value"], "value") for made in payment["refunds"] if made["status"] == "DONE")
            full = refunded >= value_cents(payment["value"], "value")
            if full:
                payment["status"] = "REFUNDED"
        if done:
            self._announce(api_key, "PAYMENT_REFUNDED" if full else "PAYMENT_PARTIALLY_REFUNDED", payment)
        return refund

    def settle_refund_route(self, account, api_key, request, body, payment_id, description, outcome):
        return self.settle_refund(api_key, payment_id, description, outcome == "done")

    def sandbox_confirm(self, account, api_key, request, body, payment_id):
        payment = self._payment(account, payment_id)
        if payment["status"] not in ("PENDING", "OVERDUE"):
            refuse("invalid_action", "Só cobranças pendentes podem ser confirmadas.")
        return self.confirm(api_key, payment_id)

    # -- webhooks

    def list_webhooks(self, account, api_key, request, body):
        return self._page([{**hook, "authToken": None} for hook in account.webhooks], request)

    def create_webhook(self, account, api_key, request, body):
        require(body, "name", "url", "email", "sendType", "authToken")
        token = str(body["authToken"])
        if not 32 <= len(token) <= 255 or re.search(r"\s", token) or re.search(r"(.)\1{3}", token):
            refuse("invalid_authToken", "O authToken deve ter de 32 a 255 caracteres, sem espaços nem repetições.")
        if len(account.webhooks) >= 10:
            refuse("invalid_action", "Limite de 10 webhooks atingido.")
        hook = {"object": "webhook", "id": self._new_id("wh"), "name": body["name"], "url": body["url"],
                "email": body["email"], "enabled": body.get("enabled", True), "interrupted": False,
                "apiVersion": 3, "authToken": token, "sendType": body["sendType"], "events": body.get("events") or []}
        account.webhooks.append(hook)
        return {**hook, "authToken": None}

    def _announce(self, api_key, event_type, payment):
        event = {"id": self._new_id("evt"), "event": event_type, "dateCreated": now_text(), "payment": dict(payment)}
        self.events[event["id"]] = (api_key, event)
        threading.Thread(target=self._post_event, args=(api_key, event), daemon=True).start()

    def _post_event(self, api_key, event):
        with self.lock:
            hooks = [hook for hook in self.account(api_key).webhooks
                     if hook["enabled"] and (not hook["events"] or event["event"] in hook["events"])]
        for hook in hooks:
            try:
                status = requests.post(hook["url"], json=event, timeout=WEBHOOK_TIMEOUT,
                                       headers={"asaas-access-token": hook["authToken"]}).status_code
            except requests.RequestException as error:
                status = type(error).__name__
            with self.lock:
                self.deliveries.append({"event_id": event["id"], "event": event["event"],
                                        "payment": event["payment"]["id"], "url": hook["url"], "status": status})


class AsaasRequestHandler(WSGIRequestHandler):
    """werkzeug's handler, but keeping Asaas's `access_token` header: WSGI servers drop
    header names with underscores (so `access-token` cannot pose as it); Asaas takes it."""

    def make_environ(self):
        environ = super().make_environ()
        environ.pop("HTTP_ACCESS_TOKEN", None)  # an `access-token` header is not Asaas's
        if "access_token" in self.headers:
            environ["HTTP_ACCESS_TOKEN"] = self.headers["access_token"]
        return environ


def serve(port):
    return make_server("127.0.0.1", port, FakeAsaas(), threaded=True, request_handler=AsaasRequestHandler)


class Running(fake_processor.Running):
    """The fake served on 127.0.0.1:`port` (0: a free one) in a thread, until `stop()`."""

    def __init__(self, port=0):
        super().__init__(serve(port), "/v3")


def main(argv=None):
    fake_processor.main(argv, "fake-asaas", __doc__.split("\n\n")[0], serve, 8030, "/v3")


if __name__ == "__main__":
    main()
