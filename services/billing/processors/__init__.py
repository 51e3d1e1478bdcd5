"""Payment processors behind one small interface.

Billing talks to a processor only through `Processor`: tokenize a card, charge a
token, create a boleto or a pix charge, find a charge by its idempotency key, refund.
`PAYMENT_PROCESSOR` names the adapter (`sandbox` by default); adding a processor is
one module with one class and one line in ADAPTERS.
"""
import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import date

from nameko.extensions import DependencyProvider

ADAPTERS = {
    "sandbox": "services.billing.processors.sandbox:SandboxProcessor",
}
DEFAULT_PROCESSOR = "sandbox"


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
class CardToken:
    """What a processor gives back for a card: a token and what a buyer may be shown."""

    token: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int


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

    @abstractmethod
    def tokenize(self, card):
        """`Card` → `CardToken`, or CardRefused."""

    @abstractmethod
    def charge_card(self, key, token, amount_cents, installments):
        """→ `ProcessorCharge` paid or refused; ProcessorUnavailable if unknown."""

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
    def refund(self, key):
        """Refund the paid charge made under `key` → `ProcessorCharge`."""

    def close(self):
        """Release connections; called when the service stops."""


def make_processor(config):
    name = config.get("PAYMENT_PROCESSOR") or DEFAULT_PROCESSOR
    if name not in ADAPTERS:
        raise ValueError(f"Unknown PAYMENT_PROCESSOR {name!r}; known: {', '.join(ADAPTERS)}.")
    module_name, class_name = ADAPTERS[name].split(":")
    # Imported on demand: an adapter may need libraries the others do not.
    return getattr(importlib.import_module(module_name), class_name)(config)


class PaymentProcessor(DependencyProvider):
    """nameko dependency: the configured processor adapter, one per process."""

    def __init__(self):
        self.processor = None

    def setup(self):
        self.processor = make_processor(self.container.config)

    def stop(self):
        self.processor.close()

    kill = stop

    def get_dependency(self, worker_ctx):
        return self.processor
