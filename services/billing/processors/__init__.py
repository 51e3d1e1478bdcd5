"""Payment processors behind one small interface.

Billing talks to a processor only through `Processor`: tokenize a card, charge a
token, create a boleto or a pix charge, find a charge by its idempotency key, refund
(part of) it and find that refund by its own key.
A merchant with a processor account (`processor_accounts`) is charged through an
adapter made with that account's credentials; any other merchant through the
installation's `PAYMENT_PROCESSOR` (`sandbox` by default). Adding a processor is one
module with one class and one line in ADAPTERS.
"""
import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import date

from nameko.extensions import DependencyProvider

ADAPTERS = {
    "sandbox": "services.billing.processors.sandbox:SandboxProcessor",
    "asaas": "services.billing.processors.asaas:AsaasProcessor",
    "mercadopago": "services.billing.processors.mercadopago:MercadoPagoProcessor",
}
DEFAULT_PROCESSOR = "sandbox"
# Processors used only through a merchant's own account (its credentials).
ACCOUNT_PROCESSORS = ("asaas", "mercadopago")
ENVIRONMENTS = ("sandbox", "production")


@dataclass(frozen=True, repr=False)
class Card:
    """Card fields as typed, held in memory only while tokenizing.

    `repr=False` and this `__repr__` keep the number and code out of any log line or
    traceback that prints the object.
    """

    number: str
    exp_month: int
    exp_year: int
    security_code: str
    holder_name: str

    def __repr__(self):
        return "Card(<redacted>)"


@dataclass(frozen=True)
class CardHolder:
    """Who pays with a card, as processors with customers (Asaas) require it."""

    name: str
    email: str
    document: str
    postal_code: str
    address_number: str
    phone: str


@dataclass(frozen=True)
class CardToken:
    """What a processor gives back for a card: a token and what a buyer may be shown;
    `customer_ref`: the processor's customer the token is bound to, where it has them."""

    token: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    customer_ref: str | None = None


@dataclass(frozen=True)
class ProcessorCharge:
    """A charge as the processor knows it."""

    key: str
    # "paid", "refused", "pending" (boleto/pix not paid yet) or "refunded".
    status: str
    reference: str
    amount_cents: int
    decline_reason: str | None = None
    boleto_line: str | None = None
    boleto_due_date: date | None = None
    # The boleto's 44-digit barcode, when the processor gives it (else it is derived
    # from the line), and the processor's own printable document (PDF), if it has one.
    boleto_barcode: str | None = None
    boleto_pdf_url: str | None = None
    pix_code: str | None = None
    # The pix QR as the processor drew it (a base64 PNG), where it gives one; the
    # portal draws its own from the code.
    pix_qr_png: str | None = None


@dataclass(frozen=True)
class ProcessorRefund:
    """A refund as the processor knows it, under our refund's key."""

    key: str
    # "pending" (asked, money not moved yet), "pending_manual" (the processor cannot
    # return it by itself: the merchant does), "done" or "failed".
    status: str
    amount_cents: int
    reference: str | None = None
    failure_reason: str | None = None


class ProcessorUnavailable(Exception):
    """No answer (network error, timeout): the charge may or may not have happened."""


class CardRefused(Exception):
    """The processor would not tokenize the card; `field` is the form field to blame."""

    def __init__(self, field, message):
        super().__init__(message)
        self.field = field
        self.message = message


class Processor(ABC):
    """Every call that charges takes the operation's idempotency key, and the processor
    answers a repeated key with the first charge instead of charging again."""

    name = None
    # Whether `tokenize` needs the card's holder (`CardHolder`): the card form asks for it.
    needs_holder = False
    # Whether its cards belong to a customer of its own (`CardToken.customer_ref`).
    card_customers = False

    @abstractmethod
    def tokenize(self, card, holder=None, remote_ip=None, email=None):
        """`Card` → `CardToken`, or CardRefused. `holder` (`CardHolder`), the buyer's
        `remote_ip` and `email` are for processors that need them (they refuse the card
        without): Mercado Pago saves the card to the customer of the buyer's e-mail."""

    @abstractmethod
    def charge_card(self, key, token, amount_cents, installments, customer_ref=None):
        """→ `ProcessorCharge` paid or refused; ProcessorUnavailable if unknown.
        `customer_ref`: the customer the token was issued for (`CardToken.customer_ref`)."""

    @abstractmethod
    def create_boleto(self, key, amount_cents, due_date, merchant_id, payer):
        """→ a pending `ProcessorCharge` with its line and due date (and its barcode and
        PDF link where the processor has them)."""

    @abstractmethod
    def create_pix(self, key, amount_cents, merchant_id, payer):
        """→ a pending `ProcessorCharge` with its copy-paste code."""

    @abstractmethod
    def find_charge(self, key):
        """The charge made under `key`, or None if the processor never saw it."""

    @abstractmethod
    def refund(self, key, refund_key, amount_cents):
        """Ask to give back `amount_cents` of the paid charge made under `key`, once per
        `refund_key` (a repeat answers the first) → `ProcessorRefund`, which is usually
        pending: processors confirm refunds later. A refund the processor refuses is
        answered `failed` with its reason; ProcessorUnavailable if the answer is lost."""

    @abstractmethod
    def find_refund(self, key, refund_key, reference=None):
        """The refund asked under `refund_key` of the charge `key`, or None if the
        processor never saw it (or, for a processor that finds refunds only by its own
        id, if `reference`, that id, is not known: asking again under the key is safe)."""

    def check_card(self, card_ref, customer_ref):
        """Refuse (CardRefused naming `card_ref` or `customer_ref`) a card handed over by a
        checkout that the processor says is not this account's; ProcessorUnavailable
        without an answer. Most processors cannot tell before a charge: nothing to check."""

    def close(self):
        """Release connections; called when the service stops."""


def _adapter_class(name, setting="PAYMENT_PROCESSOR"):
    if name not in ADAPTERS:
        raise ValueError(f"Unknown {setting} {name!r}; known: {', '.join(ADAPTERS)}.")
    module_name, class_name = ADAPTERS[name].split(":")
    # Imported on demand: an adapter may need libraries the others do not.
    return getattr(importlib.import_module(module_name), class_name)


def make_processor(config, credentials=None, environment=None):
    """The installation's adapter (`PAYMENT_PROCESSOR`); with `credentials`, the
    adapter of one merchant's account at the processor `config["processor"]` names."""
    if credentials is None:
        return _adapter_class(config.get("PAYMENT_PROCESSOR") or DEFAULT_PROCESSOR)(config)
    return _adapter_class(config["processor"], "processor")(config, credentials=credentials, environment=environment)


class Processors:
    """Every adapter billing charges through: the installation's (`default`) and one
    per merchant account, made from its credentials when first needed and made again
    when the account changes. A sandbox account shares the installation's sandbox."""

    def __init__(self, config, box):
        self.config = config
        self.box = box
        self.default = make_processor(config)
        self.name = self.default.name
        self._by_account = {}
        self._sandbox = self.default if self.default.name == "sandbox" else None

    def for_account(self, account):
        """The adapter of `account` (a `ProcessorAccount` row), or the default for None."""
        if account is None:
            return self.default
        if account.processor not in ACCOUNT_PROCESSORS:
            return self.sandbox()
        cached = self._by_account.get(account.id)
        if cached is None or cached[0] != account.sealed_credentials:
            if cached is not None:
                cached[1].close()
            try:
                credentials = self.box.open(account.sealed_credentials)
            except Exception as error:  # InvalidToken, CredentialKeysMissing: a setting to fix
                raise ProcessorUnavailable(
                    f"processor account {account.id}: its credentials cannot be opened ({type(error).__name__})"
                ) from None
            adapter = self.for_credentials(account.processor, credentials, account.environment)
            cached = self._by_account[account.id] = (account.sealed_credentials, adapter)
        return cached[1]

    def kind_of(self, account):
        """The adapter class of `account` (None: the installation's processor), for what
        its cards need (`needs_holder`, `card_customers`) without opening credentials."""
        return _adapter_class(account.processor, "processor") if account else type(self.default)

    def for_credentials(self, processor, credentials, environment):
        """A new adapter for credentials not stored yet (the caller closes it)."""
        return make_processor({**self.config, "processor": processor}, credentials=credentials, environment=environment)

    def sandbox(self):
        """The sandbox adapter, which needs no account (the installation's, if it is one)."""
        if self._sandbox is None:
            self._sandbox = make_processor({**self.config, "PAYMENT_PROCESSOR": "sandbox"})
        return self._sandbox

    def close(self):
        adapters = [self.default, self._sandbox, *(adapter for _, adapter in self._by_account.values())]
        for adapter in {id(adapter): adapter for adapter in adapters if adapter is not None}.values():
            adapter.close()


class PaymentProcessor(DependencyProvider):
    """nameko dependency: every processor adapter (`Processors`), one set per process."""

    def __init__(self):
        self.processors = None

    def setup(self):
        from services.billing.credentials import KEYS_SETTING, CredentialBox

        self.processors = Processors(self.container.config, CredentialBox(self.container.config.get(KEYS_SETTING)))

    def stop(self):
        self.processors.close()

    kill = stop

    def get_dependency(self, worker_ctx):
        return self.processors
