"""Asaas (API v3) behind the `Processor` interface, one adapter per merchant account.

Every request carries the account's `access_token` and our `User-Agent`, and one
operation (a charge with its look-ups) has `ASAAS_TIMEOUT_SECONDS` in all, below the
RPC deadline of whoever waits for it. Asaas has no idempotency header: a charge's
idempotency key is its payment's `externalReference`, and the adapter looks the key
up before creating a payment and before creating it again after a failure, so a lost
answer never charges twice. A failure it cannot resolve is `ProcessorUnavailable`:
the order stays `pending_confirmation` for the reconciler, which asks by key.

Customers are found by CPF/CNPJ before one is created (Asaas allows duplicates).
Statuses map to ours in `STATUSES` (README, "Asaas").
"""
import logging
from datetime import date
from urllib.parse import quote

import requests

from services.billing import domain
from services.billing.processors import CardRefused, CardToken, ProcessorCharge, ProcessorRefund, ProcessorUnavailable
from services.billing.processors.remote import Budget, RemoteProcessor, digits, to_cents, to_value
from services.common import clock
from services.common.documents import unpunctuated
from services.common.schemas import CARD_BRANDS

log = logging.getLogger(__name__)

BASE_URLS = {"sandbox": "ASAAS_SANDBOX_URL", "production": "ASAAS_PRODUCTION_URL"}
DEFAULT_BASE_URLS = {"ASAAS_SANDBOX_URL": "https://api-sandbox.asaas.com/v3",
                     "ASAAS_PRODUCTION_URL": "https://api.asaas.com/v3"}
DEFAULT_TIMEOUT_SECONDS = 4
DEFAULT_USER_AGENT = "portal-do-cliente"
# Asaas payment status → what billing makes of it ("processing": still unknown, the
# order waits; a status missing here changes nothing).
STATUSES = {
    "PENDING": "pending",
    "OVERDUE": "pending",
    "DUNNING_REQUESTED": "pending",
    "AWAITING_RISK_ANALYSIS": "processing",
    "AUTHORIZED": "processing",
    "CONFIRMED": "paid",
    "RECEIVED": "paid",
    "RECEIVED_IN_CASH": "paid",
    "DUNNING_RECEIVED": "paid",
    "REFUND_REQUESTED": "refunded",
    "REFUND_IN_PROGRESS": "refunded",
    "REFUNDED": "refunded",
}
# A card charge Asaas has not settled yet is still unknown to us, not a boleto's "pending".
CARD_STATUSES = {**STATUSES, "PENDING": "processing"}
# Error codes of a refused card charge → our decline reasons.
DECLINES = {"invalid_billingType": "card_payments_disabled"}
DEFAULT_DECLINE = "card_declined"
WEBHOOK_EVENTS = (
    "PAYMENT_CREATED", "PAYMENT_UPDATED", "PAYMENT_CONFIRMED", "PAYMENT_RECEIVED", "PAYMENT_OVERDUE",
    "PAYMENT_DELETED", "PAYMENT_RESTORED", "PAYMENT_REFUNDED", "PAYMENT_PARTIALLY_REFUNDED",
    "PAYMENT_AWAITING_RISK_ANALYSIS",
    "PAYMENT_APPROVED_BY_RISK_ANALYSIS", "PAYMENT_REPROVED_BY_RISK_ANALYSIS",
)
PAGE_LIMIT = 100
# Asaas refund status → ours; the ones awaiting an authorization are still pending.
REFUND_STATUSES = {"DONE": "done", "CANCELLED": "failed"}


class AsaasRefused(Exception):
    """Asaas answered 4xx: `errors` as it lists them ([{code, description}])."""

    def __init__(self, status, errors):
        super().__init__(f"Asaas answered {status}: " + "; ".join(error.get("code", "?") for error in errors))
        self.status = status
        self.errors = errors

    @property
    def codes(self):
        return [error.get("code") for error in self.errors]

    @property
    def description(self):
        return "; ".join(str(error.get("description") or error.get("code")) for error in self.errors)


def today():
    """The day Asaas counts in (Brasília)."""
    return clock.now().astimezone(domain.BOLETO_TIMEZONE).date()


class AsaasProcessor(RemoteProcessor):
    name = "asaas"
    needs_holder = True
    card_customers = True
    refused = AsaasRefused
    payment_path = "/payments/{}"
    reference_field = "externalReference"

    def __init__(self, config, credentials=None, environment="sandbox"):
        if not credentials or not credentials.get("api_key"):
            raise ValueError("The Asaas adapter is made for a merchant's account (its API key).")
        self.base_url = str(config.get(BASE_URLS[environment]) or DEFAULT_BASE_URLS[BASE_URLS[environment]]).rstrip("/")
        self.seconds = float(config.get("ASAAS_TIMEOUT_SECONDS") or DEFAULT_TIMEOUT_SECONDS)
        self.session = requests.Session()
        self.session.headers.update({
            "access_token": credentials["api_key"],
            "User-Agent": str(config.get("ASAAS_USER_AGENT") or DEFAULT_USER_AGENT),
            "Content-Type": "application/json",
            "Accept": "application/json",
        })

    def __repr__(self):
        return f"AsaasProcessor({self.base_url})"  # never the key

    def close(self):
        self.session.close()

    # -- HTTP

    def _call(self, budget, method, path, body=None, params=None):
        """Asaas's JSON answer; AsaasRefused for a 4xx it means (400, 404),
        ProcessorUnavailable for no answer, a 429 or 5xx, or a key it refuses (401, 403)."""
        try:
            answer = self.session.request(
                method, f"{self.base_url}{path}", json=body, params=params, timeout=budget.left(),
                allow_redirects=False,
            )
        except requests.RequestException as error:
            raise ProcessorUnavailable(f"asaas: {method} {path}: {type(error).__name__}") from None
        if answer.status_code == 200:
            try:
                return answer.json()
            except ValueError:
                raise ProcessorUnavailable(f"asaas: {method} {path} answered 200 without JSON") from None
        if answer.status_code in (400, 404):
            raise AsaasRefused(answer.status_code, self._errors(answer))
        if answer.status_code in (401, 403):
            log.error("asaas refused the account's API key (%s on %s %s)", answer.status_code, method, path)
        raise ProcessorUnavailable(f"asaas: {method} {path} answered {answer.status_code}")

    @staticmethod
    def _errors(answer):
        try:
            errors = answer.json().get("errors")
        except (ValueError, AttributeError):
            errors = None
        return errors if isinstance(errors, list) else [{"code": f"http_{answer.status_code}"}]

    # -- customers

    def _customer(self, budget, name, email, document, **more):
        """The Asaas customer with this CPF/CNPJ, created if there is none."""
        cpf_cnpj = unpunctuated(document)
        found = self._call(budget, "GET", "/customers", params={"cpfCnpj": cpf_cnpj, "limit": 1})
        if found.get("data"):
            return found["data"][0]["id"]
        body = {"name": name, "cpfCnpj": cpf_cnpj, "email": email, "notificationDisabled": True,
                **{field: value for field, value in more.items() if value}}
        return self._call(budget, "POST", "/customers", body)["id"]

    # -- cards

    def check_card(self, card_ref, customer_ref):
        """The customer must be one of this account's: a token is usable only with it."""
        try:
            customer = self._call(Budget(self.seconds, self.name), "GET", f"/customers/{quote(customer_ref, safe='')}")
        except AsaasRefused:
            customer = None
        if not customer or customer.get("deleted"):
            raise CardRefused("customer_ref", "Not a customer of this merchant's Asaas account.")

    def tokenize(self, card, holder=None, remote_ip=None, email=None):
        if holder is None or not remote_ip:
            raise CardRefused("holder_name", "Informe CPF/CNPJ, CEP e número do endereço do titular do cartão.")
        budget = Budget(self.seconds, self.name)
        holder_info = {
            "name": holder.name, "email": holder.email, "cpfCnpj": unpunctuated(holder.document),
            "postalCode": digits(holder.postal_code), "addressNumber": holder.address_number,
            "addressComplement": None, "phone": digits(holder.phone), "mobilePhone": None,
        }
        try:
            customer = self._customer(budget, holder.name, holder.email, holder.document,
                                      postalCode=holder_info["postalCode"], addressNumber=holder.address_number,
                                      mobilePhone=holder_info["phone"])
            answer = self._call(budget, "POST", "/creditCard/tokenizeCreditCard", {
                "customer": customer, "remoteIp": remote_ip,
                "creditCard": {"holderName": card.holder_name, "number": card.number,
                               "expiryMonth": f"{card.exp_month:02d}", "expiryYear": str(card.exp_year),
                               "ccv": card.security_code},
                "creditCardHolderInfo": holder_info,
            })
        except AsaasRefused as refused:
            field = "document" if "invalid_cpfCnpj" in refused.codes else "number"
            raise CardRefused(field, refused.description) from None
        brand = str(answer.get("creditCardBrand", "")).lower()
        return CardToken(
            token=answer["creditCardToken"], brand=brand if brand in CARD_BRANDS else domain.card_brand(card.number),
            last4=str(answer.get("creditCardNumber") or card.number[-4:])[-4:],
            exp_month=card.exp_month, exp_year=card.exp_year, customer_ref=customer,
        )

    def charge_card(self, key, token, amount_cents, installments, customer_ref=None):
        if not (token and customer_ref):
            # A token Asaas did not issue for one of its customers cannot be charged there.
            return self._refused(key, amount_cents, "payment_method_unusable")
        body = {"customer": customer_ref, "billingType": "CREDIT_CARD", "dueDate": today().isoformat(),
                "externalReference": key, "creditCardToken": token}
        if installments > 1:
            body.update(installmentCount=installments, totalValue=to_value(amount_cents))
        else:
            body["value"] = to_value(amount_cents)
        try:
            return self._create_once(Budget(self.seconds, self.name), key, body)
        except AsaasRefused as refused:
            log.info("asaas refused the card charge %s: %s", key, ", ".join(map(str, refused.codes)))
            return self._refused(key, amount_cents, next(
                (DECLINES[code] for code in refused.codes if code in DECLINES), DEFAULT_DECLINE))

    @staticmethod
    def _refused(key, amount_cents, reason):
        # A refused card charge is not stored at Asaas: it has no reference.
        return ProcessorCharge(key=key, status="refused", reference="", amount_cents=amount_cents,
                               decline_reason=reason)

    # -- boleto and pix

    def create_boleto(self, key, amount_cents, due_date, merchant_id, payer):
        return self._create_for_payer(key, amount_cents, "BOLETO", due_date, payer)

    def create_pix(self, key, amount_cents, merchant_id, payer):
        return self._create_for_payer(key, amount_cents, "PIX", today(), payer)

    def _create_for_payer(self, key, amount_cents, billing_type, due_date, payer):
        if not digits(payer.get("document")):
            return self._refused(key, amount_cents, "payer_document_missing")
        budget = Budget(self.seconds, self.name)
        try:
            customer = self._customer(budget, payer.get("name") or payer["email"], payer["email"], payer["document"],
                                      mobilePhone=digits(payer.get("phone")))
            return self._create_once(budget, key, {
                "customer": customer, "billingType": billing_type, "value": to_value(amount_cents),
                "dueDate": due_date.isoformat(), "externalReference": key,
            })
        except AsaasRefused as refused:
            log.warning("asaas refused the %s charge %s: %s", billing_type, key, ", ".join(map(str, refused.codes)))
            return self._refused(key, amount_cents, "invalid_payer" if "invalid_cpfCnpj" in refused.codes
                                 else "refused_by_processor")

    # -- one payment per key

    def _create_once(self, budget, key, body):
        """Create the payment of `key` unless Asaas already has it: looked up first, and
        again after a create that failed, before the one retry."""
        existing = self._find(budget, key)
        if existing is not None:
            return existing
        try:
            created = self._call(budget, "POST", "/payments", body)
        except ProcessorUnavailable as first_failure:
            existing = self._find(budget, key)
            if existing is not None:
                return existing
            log.warning("asaas: %s; %s was not created, trying once more", first_failure, key)
            created = self._call(budget, "POST", "/payments", body)
        # An installment plan answers with its first installment: the charge is all of them.
        return self._find(budget, key) if created.get("installment") else self._as_charge(budget, key, [created])

    def _payments_of(self, budget, key):
        """Every payment of `key` (an installment plan has one per installment)."""
        found = self._call(budget, "GET", "/payments", params={"externalReference": key, "limit": PAGE_LIMIT})
        return [payment for payment in found.get("data", []) if not payment.get("deleted")]

    def _find(self, budget, key):
        payments = self._payments_of(budget, key)
        return self._as_charge(budget, key, payments) if payments else None

    def _as_charge(self, budget, key, payments):
        """One charge of the payments of `key`: the first installment's status, the sum
        of their values; a pending boleto or pix with what the buyer pays it with."""
        first = min(payments, key=lambda payment: payment.get("installmentNumber") or 1)
        statuses = CARD_STATUSES if first.get("billingType") == "CREDIT_CARD" else STATUSES
        status = statuses.get(first.get("status"), "processing")
        charge = {"key": key, "status": status, "reference": first["id"],
                  "amount_cents": sum(to_cents(payment.get("value", 0)) for payment in payments)}
        try:
            if status == "pending" and first.get("billingType") == "BOLETO":
                line = self._call(budget, "GET", f"/payments/{first['id']}/identificationField")
                charge.update(boleto_line=digits(line.get("identificationField")), boleto_barcode=line.get("barCode"),
                              boleto_due_date=_date(first.get("dueDate")), boleto_pdf_url=first.get("bankSlipUrl"))
            elif status == "pending" and first.get("billingType") == "PIX":
                qr = self._call(budget, "GET", f"/payments/{first['id']}/pixQrCode")
                charge.update(pix_code=qr.get("payload"), pix_qr_png=qr.get("encodedImage"))
        except AsaasRefused as refused:
            # The payment exists; what the buyer pays it with is missing until it is asked again.
            log.warning("asaas: payment %s of %s: %s", first["id"], key, refused)
        return ProcessorCharge(**charge)

    def _refund_payment(self, budget, payment_reference, refund_key, amount_cents):
        """`POST /payments/{id}/refund` with the value, our refund's key as its
        description (Asaas has no idempotency header: the key is looked up first). A
        boleto's refund goes to a bank account Asaas asks the buyer for: the merchant's."""
        payment = self._call(budget, "GET", self.payment_path.format(payment_reference))
        if payment.get("billingType") == "BOLETO":
            return ProcessorRefund(refund_key, "pending_manual", amount_cents, reference=payment_reference)
        known = self._find_refund(budget, payment_reference, refund_key)
        if known is not None:
            return known
        self._call(budget, "POST", f"/payments/{payment_reference}/refund",
                   {"value": to_value(amount_cents), "description": refund_key})
        return self._find_refund(budget, payment_reference, refund_key) or ProcessorRefund(
            refund_key, "pending", amount_cents, reference=payment_reference)

    def _find_refund(self, budget, payment_reference, refund_key, refund_reference=None):
        found = self._call(budget, "GET", f"/payments/{payment_reference}/refunds", params={"limit": PAGE_LIMIT})
        for item in found.get("data", []):
            if item.get("description") == refund_key:
                status = REFUND_STATUSES.get(item.get("status"), "pending")
                return ProcessorRefund(refund_key, status, to_cents(item.get("value", 0)), reference=payment_reference,
                                       failure_reason="refund_cancelled" if status == "failed" else None)
        return None

    # -- webhooks

    def register_webhook(self, url, token, email):
        """Ask Asaas to post payment events to `url` with `token`; ValueError if refused."""
        try:
            self._call(Budget(self.seconds, self.name), "POST", "/webhooks", {
                "name": "Portal do Cliente", "url": url, "email": email, "enabled": True, "interrupted": False,
                "apiVersion": 3, "authToken": token, "sendType": "SEQUENTIALLY", "events": list(WEBHOOK_EVENTS),
            })
        except AsaasRefused as refused:
            raise ValueError(refused.description) from None


def _date(text):
    return date.fromisoformat(text) if text else None
