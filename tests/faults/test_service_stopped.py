"""(c) Both subscriptions processes stopped: what needs subscriptions answers 503 (a
page as a page, the API as JSON) within three RPC deadlines, `/status` names it, and
the orders — billing's — keep working. Started again, everything answers again."""
import requests

from support.portal_client import assert_json_error
from support.workload import buyers_with_subscriptions, report


def test_c_subscriptions_stopped_what_needs_it_answers_503_and_orders_keep_working(fleet, rpc):
    [(session, subscription_id)] = buyers_with_subscriptions(fleet, rpc, 1, 1)
    wait = 3 * fleet.rpc_timeout
    url = fleet.gateway_url
    needs_subscriptions = [
        ("GET", "/api/v1/me/subscriptions"), ("GET", f"/api/v1/me/subscriptions/{subscription_id}"),
        ("POST", f"/api/v1/me/subscriptions/{subscription_id}/plan-change/quote"), ("GET", "/assinaturas"),
    ]
    orders_only = [("GET", "/api/v1/me/orders"), ("GET", "/pedidos")]

    stopped = fleet.running("subscriptions")
    for process in stopped:
        assert fleet.end(process) == 0  # SIGTERM: a clean stop
    answers = {}
    try:
        for method, path in needs_subscriptions + orders_only:
            body = {"offer_id": "acme-premium-mensal"} if method == "POST" else None
            try:
                answers[path] = session.request(method, f"{url}{path}", json=body, timeout=wait)
            except requests.Timeout:
                answers[path] = None
        status = requests.get(f"{url}/status", timeout=wait)
    finally:
        for _ in stopped:
            fleet.start_process("subscriptions")
        fleet.wait_until_serving()

    unavailable = [path for _, path in needs_subscriptions if answers[path] is not None
                   and answers[path].status_code == 503]
    orders_ok = [path for _, path in orders_only if answers[path] is not None and answers[path].status_code == 200]
    report("(c) subscriptions stopped", requests=len(answers), answered_503=len(unavailable),
           orders_ok=len(orders_ok), failed=len(answers) - len(unavailable) - len(orders_ok))

    assert unavailable == [path for _, path in needs_subscriptions]
    for _, path in needs_subscriptions[:3]:
        assert_json_error(answers[path], 503, "service_unavailable")
    page = answers["/assinaturas"]
    assert page.headers["Content-Type"].startswith("text/html") and "Não foi possível concluir" in page.text
    assert orders_ok == [path for _, path in orders_only]
    assert [order["subscription_id"] for order in answers["/api/v1/me/orders"].json()["orders"]] == [subscription_id]
    assert status.status_code == 503 and status.json()["error"]["fields"]["services"] == ["subscriptions"]

    # Back: the same requests answer again.
    assert session.get(f"{url}/api/v1/me/subscriptions/{subscription_id}", timeout=wait).status_code == 200
    assert requests.get(f"{url}/status", timeout=wait).status_code == 200
