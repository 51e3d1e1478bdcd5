"""`portalctl refunds failed` lists the refunds processors refused, from billing."""
from portalctl import cli


def test_failed_refunds_are_listed_with_their_order_and_reason(monkeypatch, capsys):
    asked = []

    class Billing:
        def list_failed_refunds(self, merchant_id=None):
            asked.append(merchant_id)
            return [{"id": "r-1", "order_code": "PED-ABCDEFGH", "amount_cents": 4990, "merchant_id": "acme-cursos",
                     "failure_reason": "refund_declined", "settled_at": "2026-12-07T13:00:00+00:00"}]

    class Proxy:
        billing = Billing()

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(cli, "cluster_rpc", lambda config: Proxy())
    assert cli.main(["refunds", "failed", "--merchant", "acme-cursos"]) == 0
    assert asked == ["acme-cursos"]
    line = capsys.readouterr().out.strip()
    assert "PED-ABCDEFGH" in line and "4990 cents" in line and "refund_declined" in line and "r-1" in line
