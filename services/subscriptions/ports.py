"""What the subscriptions handlers use of the world outside their database: billing
and the clock (and one setting), passed in as `Ports` so tests give fakes.

In production billing is `RpcBilling` (over the worker's TimedRpc proxy: every call
times out) and the clock `services.common.clock.now`, which every process reads from
the same CLOCK_FILE when one is set (tests and demos move time for all of them at once).
"""
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Protocol

from nameko.exceptions import RemoteError

from services.common.errors import ServiceUnavailable


class BillingPort(Protocol):
    """The calls subscriptions makes to billing (billing's RPC contract)."""

    def charge(self, request: dict) -> dict:
        """The order made under the request's idempotency key (a repeat answers the
        first); raises a PortalError when billing refuses to make it."""

    def charge_batch(self, requests: list) -> list:
        """`charge` for each request: each answer `{"order": ..., "error": ...}`."""

    def orders_by_keys(self, idempotency_keys: list) -> dict:
        """The orders already made under any of these keys, by key."""

    def get_payment_method(self, owner: dict, token: str) -> dict:
        """The card `token` of this buyer at this merchant; NotFound otherwise."""

    def issue_card_entry_ticket(self, request: dict) -> dict:
        """A one-time card-entry ticket (`form_url`, `expires_at`)."""

    def register_card(self, card: dict) -> None:
        """Keep a checkout's card on file; refused if it is another buyer's."""

    def with_timeout(self, seconds: float) -> "BillingPort":
        """The same billing, whose calls wait up to `seconds`."""


class RpcBilling:
    """BillingPort over nameko RPC (a TimedRpc proxy)."""

    def __init__(self, proxy):
        self._proxy = proxy

    def charge(self, request):
        return self._proxy.charge(request)

    # The renewal job's calls: billing failing unexpectedly (RemoteError) is a passing
    # fault like billing not answering, after which the batch is due again.

    def charge_batch(self, requests):
        with _billing_failure_passes():
            return self._proxy.charge_batch(requests)

    def orders_by_keys(self, idempotency_keys):
        with _billing_failure_passes():
            return self._proxy.orders_by_keys(idempotency_keys)

    def get_payment_method(self, owner, token):
        return self._proxy.get_payment_method(owner, token)

    def issue_card_entry_ticket(self, request):
        return self._proxy.issue_card_entry_ticket(request)

    def register_card(self, card):
        return self._proxy.register_card(card)

    def with_timeout(self, seconds):
        return RpcBilling(self._proxy.with_timeout(seconds))


@contextmanager
def _billing_failure_passes():
    try:
        yield
    except RemoteError as error:
        raise ServiceUnavailable(f"billing failed: {error}", fields={"service": "billing"}) from error


@dataclass(frozen=True)
class Ports:
    billing: BillingPort
    # Timezone-aware UTC now (production: services.common.clock.now).
    clock: Callable[[], datetime]
    # How long before a renewal its boleto/pix order is issued (RENEWAL_ISSUE_DAYS_AHEAD).
    issue_ahead: timedelta
