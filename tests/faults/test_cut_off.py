"""A gateway cut off from the broker while the others keep their link: its requests
answer 503 within three RPC deadlines (never a hang) and its `/readyz` says why. Its
answers come through direct reply-to, so it has no reply queue that could be lost
meanwhile (stock nameko's expires 5 minutes after its consumer left). The link back,
the gateway answers as before by itself."""
import time

import requests

from support.ports import free_ports
from support.tcp_proxy import TcpProxy
from support.workload import buyers_with_subscriptions, client_of, report

RECOVERY_SECONDS = 60


def test_a_gateway_cut_off_answers_503_in_time_and_recovers_by_itself(fleet, rpc, rabbit_node):
    [(session, subscription_id)] = buyers_with_subscriptions(fleet, rpc, 1, 1)
    proxy = TcpProxy("127.0.0.1", rabbit_node.port)
    [port] = free_ports(1)
    # Its own port, so every request below reaches it (cookies are for "localhost").
    url = f"http://localhost:{port}"
    client = client_of(session)
    wait = 3 * fleet.rpc_timeout
    gateway = fleet.start_process(
        "gateway", AMQP_URI=f"amqp://guest:guest@127.0.0.1:{proxy.port}/", GATEWAY_PORT=str(port))
    try:
        subscription = f"{url}/api/v1/me/subscriptions/{subscription_id}"
        until(lambda: status_of(client, subscription, wait) == 200, "the new gateway to answer")
        reply_queues = {name for name in rabbit_node.queues() if name.startswith("rpc.reply-gateway-")}

        proxy.cut()
        cut_off = [status_of(client, subscription, wait) for _ in range(3)]
        ready_cut_off = status_of(client, f"{url}/readyz", wait)

        proxy.restore()
        started = time.monotonic()
        until(lambda: status_of(client, subscription, wait) == 200, "the gateway to answer again",
              timeout=RECOVERY_SECONDS)
        recovered_in = time.monotonic() - started
        ready_after = status_of(client, f"{url}/readyz", wait)
    finally:
        fleet.end(gateway)
        client.close()
        proxy.close()

    report("cut-off gateway", requests=len(cut_off), answered_503=cut_off.count(503),
           hung=cut_off.count(None), failed=len(cut_off) - cut_off.count(503), recovered_s=round(recovered_in, 1))
    assert reply_queues == set()
    assert cut_off == [503, 503, 503]
    assert (ready_cut_off, ready_after) == (503, 200)


def status_of(client, url, timeout):
    """The status `url` answers within `timeout` seconds, or None."""
    try:
        return client.get(url, timeout=timeout).status_code
    except requests.RequestException:
        return None


def until(condition, what, timeout=30):
    """The first truthy value of `condition()`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"waited {timeout}s for {what}")
