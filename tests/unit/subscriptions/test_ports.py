"""The RPC adapter of BillingPort: what it asks billing, and a batch call that billing
failed unexpectedly turned into a passing fault (the renewal batch is due again)."""
import pytest
from nameko.exceptions import RemoteError

from services.common.errors import ServiceUnavailable
from services.subscriptions.ports import RpcBilling


class Proxy:
    """A TimedRpc proxy that records calls, and fails as told."""

    def __init__(self, failing=()):
        self.calls = []
        self.failing = failing
        self.timeout = None

    def with_timeout(self, seconds):
        self.timeout = seconds
        return self

    def __getattr__(self, method):
        def call(*args):
            self.calls.append((method, args))
            if method in self.failing:
                raise RemoteError("RuntimeError", "billing failed")
            return {"method": method}
        return call


def test_each_call_goes_to_billing_as_is():
    proxy = Proxy()
    billing = RpcBilling(proxy)
    assert billing.charge({"idempotency_key": "k"}) == {"method": "charge"}
    billing.get_payment_method({"email": "ana@example.com"}, "tok")
    assert billing.with_timeout(30).orders_by_keys(["k"]) == {"method": "orders_by_keys"}
    assert proxy.timeout == 30
    assert proxy.calls == [("charge", ({"idempotency_key": "k"},)),
                           ("get_payment_method", ({"email": "ana@example.com"}, "tok")),
                           ("orders_by_keys", (["k"],))]


@pytest.mark.parametrize("method, argument", [("charge_batch", []), ("orders_by_keys", [])])
def test_billing_failing_in_a_batch_call_is_a_passing_fault(method, argument):
    with pytest.raises(ServiceUnavailable):
        getattr(RpcBilling(Proxy(failing=(method,))), method)(argument)


def test_billing_failing_in_a_buyers_charge_stays_as_it_was():
    with pytest.raises(RemoteError):
        RpcBilling(Proxy(failing=("charge",))).charge({})
