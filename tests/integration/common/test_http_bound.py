"""A process serves at most HTTP_MAX_REQUESTS_IN_FLIGHT requests at once; one more is
answered 503 `overloaded` at once, and once those finish it is served again. The
probes (/healthz, /readyz) are answered whatever is in flight."""
import eventlet
import requests

from services.common.web import http, json_response
from support.ports import free_port

RELEASE = {"event": None}


class Slow:
    name = "slow"

    @http("GET", "/wait")
    def wait(self, request):
        RELEASE["event"].wait()
        return json_response({"waited": True})

    @http("GET", "/now")
    def now(self, request):
        return json_response({"now": True})

    @http("GET", "/healthz")
    def healthz(self, request):
        return json_response({"status": "ok"})


def test_a_request_beyond_the_bound_is_refused_at_once_and_the_bound_frees_up(container_factory, rabbit_config):
    RELEASE["event"] = eventlet.Event()
    port = free_port()
    config = {**rabbit_config, "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}", "HTTP_MAX_REQUESTS_IN_FLIGHT": 2}
    container_factory(Slow, config).start()
    url = f"http://127.0.0.1:{port}"

    waiting = [eventlet.spawn(requests.get, f"{url}/wait", timeout=10) for _ in range(2)]
    eventlet.sleep(0.5)  # both are under way
    refused = requests.get(f"{url}/now", timeout=10)
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "overloaded"
    assert refused.headers["Retry-After"] == "1"
    assert requests.get(f"{url}/healthz", timeout=10).json() == {"status": "ok"}

    RELEASE["event"].send()
    assert [answer.wait().json() for answer in waiting] == [{"waited": True}] * 2
    assert requests.get(f"{url}/now", timeout=10).json() == {"now": True}
