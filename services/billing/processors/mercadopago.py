"""Mercado Pago (Payments API v1) behind the `Processor` interface, one adapter per
merchant account.

Plain HTTP with `requests`, not the official SDK: the SDK's base URL is a private
constant (tests and `make run` point ours at devtools' fake with
`MERCADOPAGO_API_URL`), it retries 429 and 5xx on its own with a 60-second timeout
(one operation here has `MERCADOPAGO_TIMEOUT_SECONDS` in all, below the RPC deadline,
and retries only after looking the charge up), and it sends a random idempotency key
unless told otherwise. Every request carries the account's access token.

Idempotency: a payment's `X-Idempotency-Key` is always our charge's key (Mercado Pago
answers a repeated key with the payment it made) and its `external_reference` is the
key too. The adapter searches by `external_reference` before creating a payment and
again after a create that failed, before the one retry; a failure it cannot resolve is
`ProcessorUnavailable`, so the order stays `pending_confirmation` for the reconciler.

Cards (Mercado Pago's "automatic payments"): a card token is single use, so
`tokenize` saves the card to the buyer's Mercado Pago customer (found by e-mail) and
billing keeps the saved card's id (`CardToken.token`) and the customer's
(`customer_ref`). Each charge makes a fresh token from the saved card, without the
security code, and pays with it as the customer (`payer.type = customer`): Mercado
Pago must have enabled the merchant's application for payments without CVV (README,
"Mercado Pago"). Statuses map to ours in `STATUSES`.
"""
import hashlib
import logging
from datetime import datetime, time
from urllib.parse import quote

import requests

from services.billing import domain
from services.billing.processors import CardRefused, CardToken, ProcessorCharge, ProcessorRefund, ProcessorUnavailable
from services.billing.processors.remote import Budget, RemoteProcessor, digits, to_cents, to_value
from services.common.schemas import CARD_BRANDS

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.mercadopago.com"
DEFAULT_TIMEOUT_SECONDS = 4
USER_AGENT = "portal-do-cliente"
# Mercado Pago's SDKs refuse idempotency keys longer than this.
MAX_IDEMPOTENCY_KEY = 64
# Mercado Pago payment status → what billing makes of it ("processing": still unknown,
# the order waits; a status missing here is "processing" too).
STATUSES = {
    "pending": "pending",
    "approved": "paid",
    "authorized": "processing",
    "in_process": "processing",
    "in_mediation": "paid",
    "rejected": "refused",
    "cancelled": "refused",
    "refunded": "refunded",
    "charged_back": "refunded",
}
# A card payment still pending (a 3-D Secure challenge, a contingency) is unknown to us,
# not a boleto's "pending".
CARD_STATUSES = {**STATUSES, "pending": "processing"}
# Mercado Pago refund status → ours (in_process: pending).
REFUND_STATUSES = {"approved": "done", "rejected": "failed", "cancelled": "failed"}
CARD_PAYMENT_TYPES = ("credit_card", "debit_card", "prepaid_card")
# status_detail of a refused payment → our decline reason.
DECLINES = {"cc_rejected_insufficient_amount": "insufficient_funds", "expired": "payment_expired"}
DEFAULT_DECLINE = "card_declined"
# Cause codes of a refused create: a token Mercado Pago does not take (3003 a used one,
# 2006 unknown, 2062 invalid) and a saved card charged without its security code by an
# application not enabled for it (3031).
TOKEN_REFUSALS = {"3003", "2006", "2062"}
CVV_REQUIRED = "3031"
# Mercado Pago's payment_method_id → our card brand.
BRANDS = {"master": "mastercard", "debmaster": "mastercard", "debvisa": "visa", "debelo": "elo"}
BOLETO_METHOD = "bolbradesco"
# What Mercado Pago requires of a boleto's payer (BACEN rules, since 2024-05).
BOLETO_ADDRESS = ("street", "number", "district", "city", "state", "postal_code")


class MercadoPagoRefused(Exception):
    """Mercado Pago answered 400 or 404: its message and cause codes."""

    def __init__(self, status, body):
        self.status = status
        self.message = str(body.get("message") or f"http_{status}")
        causes = body.get("cause") if isinstance(body.get("cause"), list) else []
        self.codes = {str(cause.get("code")) for cause in causes if isinstance(cause, dict)}
        super().__init__(f"Mercado Pago answered {status}: {self.message} ({', '.join(sorted(self.codes))})")


def idempotency_header(key):
    """Our key as Mercado Pago takes it: itself, or its SHA-256 if longer than 64."""
    return key if len(key) <= MAX_IDEMPOTENCY_KEY else hashlib.sha256(key.encode("utf-8")).hexdigest()


def identification(document):
    """A CPF or CNPJ as Mercado Pago's `identification`, or None."""
    number = digits(document)
    kinds = {11: "CPF", 14: "CNPJ"}
    return {"type": kinds[len(number)], "number": number} if len(number) in kinds else None


def names(full_name):
    """(first_name, last_name) as boleto payers need them."""
    first, _, rest = (full_name or "").strip().partition(" ")
    return first, rest.strip() or first


class MercadoPagoProcessor(RemoteProcessor):
    name = "mercadopago"
    card_customers = True
    refused = MercadoPagoRefused
    payment_path = "/v1/payments/{}"
    reference_field = "external_reference"

    def __init__(self, config, credentials=None, environment="sandbox"):
        if not credentials or not credentials.get("api_key"):
            raise ValueError("The Mercado Pago adapter is made for a merchant's account (its access token).")
        # One API for test and live: the access token decides which.
        self.base_url = str(config.get("MERCADOPAGO_API_URL") or DEFAULT_BASE_URL).rstrip("/")
        self.seconds = float(config.get("MERCADOPAGO_TIMEOUT_SECONDS") or DEFAULT_TIMEOUT_SECONDS)
        self.session = requests.Session()
        self.session.headers.update({
            "Authorization": f"Bearer {credentials['api_key']}", "User-Agent": USER_AGENT,
            "Content-Type": "application/json", "Accept": "application/json",
        })

    def __repr__(self):
        return f"MercadoPagoProcessor({self.base_url})"  # never the token

    def close(self):
        self.session.close()

    # -- HTTP

    def _call(self, budget, method, path, body=None, params=None, idempotency_key=None):
        """Mercado Pago's JSON answer; MercadoPagoRefused for a 400 or 404,
        ProcessorUnavailable for no answer, a 429 or 5xx, or a token it refuses (401, 403)."""
        headers = {"X-Idempotency-Key": idempotency_header(idempotency_key)} if idempotency_key else None
        try:
            answer = self.session.request(
                method, f"{self.base_url}{path}", json=body, params=params, headers=headers,
                timeout=budget.left(), allow_redirects=False,
            )
        except requests.RequestException as error:
            raise ProcessorUnavailable(f"mercadopago: {method} {path}: {type(error).__name__}") from None
        if answer.status_code in (200, 201):
            try:
                return answer.json()
            except ValueError:
                raise ProcessorUnavailable(f"mercadopago: {method} {path} answered {answer.status_code} without JSON") from None
        if answer.status_code in (400, 404):
            try:
                refusal = answer.json()
            except ValueError:
                refusal = None
            raise MercadoPagoRefused(answer.status_code, refusal if isinstance(refusal, dict) else {})
        if answer.status_code in (401, 403):
            log.error("mercadopago refused the account's access token (%s on %s %s)", answer.status_code, method, path)
        raise ProcessorUnavailable(f"mercadopago: {method} {path} answered {answer.status_code}")

    # -- customers and cards

    def _customer(self, budget, email, holder=None):
        """The Mercado Pago customer with this e-mail, created if there is none."""
        found = self._call(budget, "GET", "/v1/customers/search", params={"email": email})
        if found.get("results"):
            return found["results"][0]["id"]
        body = {"email": email}
        if holder is not None:
            first_name, last_name = names(holder.name)
            body.update(first_name=first_name, last_name=last_name)
            if identification(holder.document):
                body["identification"] = identification(holder.document)
        try:
            return self._call(budget, "POST", "/v1/customers", body)["id"]
        except MercadoPagoRefused as refused:
            if "101" not in refused.codes:  # "the customer already exist": made meanwhile
                raise
        return self._call(budget, "GET", "/v1/customers/search", params={"email": email})["results"][0]["id"]

    def tokenize(self, card, holder=None, remote_ip=None, email=None):
        email = email or (holder and holder.email)
        if not email:
            raise CardRefused("holder_name", "Informe o e-mail do titular do cartão.")
        budget = Budget(self.seconds, self.name)
        cardholder = {"name": card.holder_name}
        if holder is not None and identification(holder.document):
            cardholder["identification"] = identification(holder.document)
        try:
            token = self._call(budget, "POST", "/v1/card_tokens", {
                "card_number": card.number, "security_code": card.security_code,
                "expiration_month": card.exp_month, "expiration_year": card.exp_year, "cardholder": cardholder,
            })
        except MercadoPagoRefused as refused:
            raise CardRefused("number", refused.message) from None
        return self._save(budget, token["id"], email, holder, domain.card_brand(card.number))

    def save_card(self, card_token, email, holder=None):
        """Save a card token made elsewhere (MercadoPago.js in a checkout) to the buyer's
        customer → `CardToken`; CardRefused for a token Mercado Pago will not take."""
        return self._save(Budget(self.seconds, self.name), card_token, email, holder)

    def _save(self, budget, card_token, email, holder, known_brand=None):
        """The card of the single-use `card_token`, saved to the customer of `email`;
        its brand as Mercado Pago names it, else `known_brand` (CardRefused if neither
        is one billing shows)."""
        try:
            customer = self._customer(budget, email, holder)
            saved = self._call(budget, "POST", f"/v1/customers/{customer}/cards", {"token": card_token})
        except MercadoPagoRefused as refused:
            raise CardRefused("number", refused.message) from None
        method = str((saved.get("payment_method") or {}).get("id", "")).lower()
        brand = BRANDS.get(method, method) if BRANDS.get(method, method) in CARD_BRANDS else known_brand
        if brand is None:
            raise CardRefused("number", "Bandeira de cartão não aceita.")
        return CardToken(
            token=str(saved["id"]), brand=brand,
            last4=str(saved.get("last_four_digits", ""))[-4:], exp_month=int(saved["expiration_month"]),
            exp_year=int(saved["expiration_year"]), customer_ref=customer,
        )

    def check_card(self, card_ref, customer_ref):
        """The card must be one saved to this account's customer: only such a card is charged."""
        try:
            self._call(Budget(self.seconds, self.name), "GET",
                       f"/v1/customers/{quote(customer_ref, safe='')}/cards/{quote(card_ref, safe='')}")
        except MercadoPagoRefused:
            raise CardRefused("token", "Not a card of this customer at the merchant's Mercado Pago account.") from None

    def charge_card(self, key, token, amount_cents, installments, customer_ref=None):
        if not (token and customer_ref):
            # Only a card saved to one of the account's customers can be charged again.
            return self._refused(key, amount_cents, "payment_method_unusable")
        budget = Budget(self.seconds, self.name)

        def payment():
            try:
                card = self._call(budget, "GET", f"/v1/customers/{customer_ref}/cards/{token}")
            except MercadoPagoRefused as refused:
                if refused.status == 404:
                    return None
                raise
            fresh = self._call(budget, "POST", "/v1/card_tokens", {"card_id": str(card["id"])})
            return {
                "transaction_amount": to_value(amount_cents), "token": fresh["id"], "installments": installments,
                "payment_method_id": card["payment_method"]["id"], "issuer_id": (card.get("issuer") or {}).get("id"),
                "payer": {"type": "customer", "id": customer_ref}, "external_reference": key,
            }

        try:
            return self._create_once(budget, key, amount_cents, payment)
        except MercadoPagoRefused as refused:
            log.warning("mercadopago refused the card charge %s: %s", key, refused)
            reason = ("recurring_charges_disabled" if CVV_REQUIRED in refused.codes
                      else "payment_method_unusable" if refused.codes & TOKEN_REFUSALS else DEFAULT_DECLINE)
            return self._refused(key, amount_cents, reason)

    @staticmethod
    def _refused(key, amount_cents, reason):
        # Refused before Mercado Pago made a payment: it has no reference.
        return ProcessorCharge(key=key, status="refused", reference="", amount_cents=amount_cents,
                               decline_reason=reason)

    # -- boleto and pix

    def create_boleto(self, key, amount_cents, due_date, merchant_id, payer):
        address = payer.get("address") or {}
        if not identification(payer.get("document")):
            return self._refused(key, amount_cents, "payer_document_missing")
        if not all(address.get(field) for field in BOLETO_ADDRESS):
            return self._refused(key, amount_cents, "payer_address_missing")
        first_name, last_name = names(payer.get("name") or payer["email"])
        # Due at the end of its day in Brasília, as banks count it.
        due_at = datetime.combine(due_date, time(23, 59, 59), tzinfo=domain.BOLETO_TIMEZONE)
        return self._create_for_payer(key, amount_cents, {
            "payment_method_id": BOLETO_METHOD, "date_of_expiration": due_at.isoformat(timespec="milliseconds"),
            "payer": {
                "email": payer["email"], "first_name": first_name, "last_name": last_name,
                "identification": identification(payer["document"]),
                "address": {"zip_code": digits(address["postal_code"]), "street_name": address["street"],
                            "street_number": address["number"], "neighborhood": address["district"],
                            "city": address["city"], "federal_unit": address["state"]},
            },
        })

    def create_pix(self, key, amount_cents, merchant_id, payer):
        body_payer = {"email": payer["email"]}
        if identification(payer.get("document")):
            body_payer["identification"] = identification(payer["document"])
        return self._create_for_payer(key, amount_cents, {"payment_method_id": "pix", "payer": body_payer})

    def _create_for_payer(self, key, amount_cents, body):
        try:
            return self._create_once(Budget(self.seconds, self.name), key, amount_cents, lambda: {
                **body, "transaction_amount": to_value(amount_cents), "external_reference": key,
            })
        except MercadoPagoRefused as refused:
            log.warning("mercadopago refused the %s charge %s: %s", body["payment_method_id"], key, refused)
            return self._refused(key, amount_cents, "invalid_payer" if "2067" in refused.codes
                                 else "refused_by_processor")

    # -- one payment per key

    def _create_once(self, budget, key, amount_cents, payment):
        """The payment of `key`, created unless Mercado Pago already has it: looked up
        first, and again after a create that failed, before the one retry. `payment()`
        makes the body (a card's single-use token with it) or None: the card is gone."""
        existing = self._find(budget, key)
        if existing is not None:
            return existing
        body = payment()
        if body is None:
            return self._refused(key, amount_cents, "payment_method_unusable")
        try:
            created = self._call(budget, "POST", "/v1/payments", body, idempotency_key=key)
        except ProcessorUnavailable as first_failure:
            existing = self._find(budget, key)
            if existing is not None:
                return existing
            log.warning("mercadopago: %s; %s was not created, trying once more", first_failure, key)
            body = payment()
            if body is None:
                return self._refused(key, amount_cents, "payment_method_unusable")
            created = self._call(budget, "POST", "/v1/payments", body, idempotency_key=key)
        return self._as_charge(key, created)

    def _find(self, budget, key):
        found = self._call(budget, "GET", "/v1/payments/search", params={
            "external_reference": key, "sort": "date_created", "criteria": "desc", "limit": 1,
        })
        results = found.get("results") or []
        return self._as_charge(key, results[0]) if results else None

    @staticmethod
    def _as_charge(key, payment):
        card = payment.get("payment_type_id") in CARD_PAYMENT_TYPES
        status = (CARD_STATUSES if card else STATUSES).get(payment.get("status"), "processing")
        charge = {"key": key, "status": status, "reference": str(payment["id"]),
                  "amount_cents": to_cents(payment.get("transaction_amount", 0))}
        if status == "refused":
            charge["decline_reason"] = DECLINES.get(payment.get("status_detail"),
                                                    DEFAULT_DECLINE if card else "refused_by_processor")
        details = payment.get("transaction_details") or {}
        if status == "pending" and payment.get("payment_method_id") == BOLETO_METHOD:
            expires = payment.get("date_of_expiration")
            charge.update(
                boleto_line=digits(details.get("digitable_line")) or None,
                boleto_barcode=(details.get("barcode") or {}).get("content"),
                boleto_pdf_url=details.get("external_resource_url"),
                boleto_due_date=datetime.fromisoformat(expires).date() if expires else None,
            )
        elif status == "pending" and payment.get("payment_method_id") == "pix":
            qr = (payment.get("point_of_interaction") or {}).get("transaction_data") or {}
            charge.update(pix_code=qr.get("qr_code"), pix_qr_png=qr.get("qr_code_base64"))
        return ProcessorCharge(**charge)

    def _refund_payment(self, budget, payment_reference, refund_key, amount_cents):
        """`POST /v1/payments/{id}/refunds` with the amount, under our refund's key as its
        X-Idempotency-Key: a repeat answers the refund made first."""
        answer = self._call(budget, "POST", f"/v1/payments/{payment_reference}/refunds",
                            {"amount": to_value(amount_cents)}, idempotency_key=refund_key)
        return self._as_refund(refund_key, answer)

    def _find_refund(self, budget, payment_reference, refund_key, refund_reference=None):
        # Mercado Pago finds a refund by its own id only; without it, asking again under
        # the key (the reconciler does) answers the refund if it was made.
        if refund_reference is None:
            return None
        return self._as_refund(refund_key, self._call(
            budget, "GET", f"/v1/payments/{payment_reference}/refunds/{refund_reference}"))

    @staticmethod
    def _as_refund(refund_key, refund):
        status = REFUND_STATUSES.get(refund.get("status"), "pending")
        return ProcessorRefund(refund_key, status, to_cents(refund.get("amount", 0)), reference=str(refund["id"]),
                               failure_reason="refund_rejected" if status == "failed" else None)
