"""What the adapters of processors across the network share: one time budget per
operation, and amounts as the JSON numbers (reais) their APIs read and write."""
import logging
import re
import time
from decimal import Decimal

from services.billing.processors import Processor, ProcessorRefund, ProcessorUnavailable

log = logging.getLogger(__name__)


class Budget:
    """The time one operation has left, shared by its requests (`processor` names who
    ran out of it)."""

    def __init__(self, seconds, processor):
        self.deadline = time.monotonic() + seconds
        self.processor = processor

    def left(self):
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise ProcessorUnavailable(f"{self.processor}: out of time for this operation")
        return remaining


def to_cents(value):
    return int((Decimal(str(value)) * 100).to_integral_value())


def to_value(cents):
    """Cents as the JSON number of reais a processor reads."""
    return float(Decimal(cents) / 100)


def digits(text):
    return re.sub(r"\D", "", text or "")


class RemoteProcessor(Processor):
    """An adapter whose payments carry our key as their external reference: looked up
    by it (`_find`), and by their own id for a callback (`payment_key`). Subclasses set
    `refused` (their exception for a 4xx answer), `payment_path` (a format string of the
    payment's path) and `reference_field`, and have `self.seconds` (their time budget),
    `_call(budget, method, path)`, `_find(budget, key)`, `_refund_payment(budget,
    payment_reference, refund_key, amount_cents)` and `_find_refund(budget,
    payment_reference, refund_key, refund_reference)`. A refund the processor refuses
    (a 4xx) is a failed refund, not an unknown one."""

    refused = None
    payment_path = None
    reference_field = None

    def find_charge(self, key):
        try:
            return self._find(Budget(self.seconds, self.name), key)
        except self.refused as refused:
            raise ProcessorUnavailable(f"{self.name}: the look-up of {key} was refused ({refused})") from None

    def payment_key(self, payment_id):
        """Our key of the processor's payment (its external reference), or None."""
        try:
            payment = self._call(Budget(self.seconds, self.name), "GET", self.payment_path.format(payment_id))
        except self.refused:
            return None
        return payment.get(self.reference_field) or None

    def refund(self, key, refund_key, amount_cents):
        budget = Budget(self.seconds, self.name)
        try:
            charge = self._find(budget, key)
            # A refunded charge may be this refund's own doing (its answer lost): asked
            # again under the same key, the processor answers it or refuses.
            if charge is None or charge.status not in ("paid", "refunded"):
                return ProcessorRefund(refund_key, "failed", amount_cents, failure_reason="not_refundable")
            return self._refund_payment(budget, charge.reference, refund_key, amount_cents)
        except self.refused as refused:
            log.warning("%s: the refund %s of %s was refused (%s)", self.name, refund_key, key, refused)
            return ProcessorRefund(refund_key, "failed", amount_cents, failure_reason="refused_by_processor")

    def find_refund(self, key, refund_key, reference=None):
        budget = Budget(self.seconds, self.name)
        try:
            charge = self._find(budget, key)
            return charge and self._find_refund(budget, charge.reference, refund_key, reference)
        except self.refused as refused:
            raise ProcessorUnavailable(f"{self.name}: the look-up of {refund_key} was refused ({refused})") from None
