"""The single-process baseline of the page benchmark: the same two views the gateway
serves (orders list, subscription detail), from the same databases, through the same
view functions (`gateway.views`) and service methods, but called in-process instead
of over the bus.

`python -m bench.baseline PORT` serves them on 127.0.0.1:PORT with eventlet's WSGI
server (the one nameko's web entrypoint runs on); the databases and settings come from
the environment, as every process of the system reads them.
"""
import eventlet

eventlet.monkey_patch()

import functools  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
from concurrent.futures import Future  # noqa: E402

from eventlet import wsgi  # noqa: E402
from nameko.testing.services import worker_factory  # noqa: E402
from sqlalchemy.orm import sessionmaker  # noqa: E402
from werkzeug.routing import Map, Rule  # noqa: E402
from werkzeug.wrappers import Request  # noqa: E402

from gateway import views  # noqa: E402
from gateway.cookies import bearer_token_from  # noqa: E402
from services.auth.service import AuthService  # noqa: E402
from services.billing.service import BillingService  # noqa: E402
from services.common.config import load_config  # noqa: E402
from services.common.db import UnitOfWork, make_engine  # noqa: E402
from services.common.web import error_response, json_response  # noqa: E402
from services.subscriptions.service import SubscriptionsService  # noqa: E402

ROUTES = Map([
    Rule("/api/v1/me/orders", endpoint="orders"),
    Rule("/api/v1/me/subscriptions/<subscription_id>", endpoint="subscription"),
])


class InProcess:
    """Stands in for the gateway's RPC proxies in `gateway.views`: `rpc.<service>.<method>`
    calls that service's worker directly; its `call_async` has already answered."""

    def __init__(self, **workers):
        self._workers = workers

    def __getattr__(self, service):
        return _InProcessService(self._workers[service])


class _InProcessService:
    def __init__(self, worker):
        self._worker = worker

    def __getattr__(self, method_name):
        method = functools.partial(getattr(self._worker, method_name))
        method.call_async = functools.partial(_answered, method)
        return method


def _answered(method, *args, **kwargs):
    """A Future that has the call's result or its error, as an RPC's `result()` gives them."""
    answer = Future()
    try:
        answer.set_result(method(*args, **kwargs))
    except Exception as error:  # noqa: B902 - raised by result(), where the view expects it
        answer.set_exception(error)
    return answer


def unit_of_work(config, key):
    return UnitOfWork(sessionmaker(bind=make_engine(config[key]), expire_on_commit=False))


def make_app(config):
    # Only what these read paths use is given; any other dependency is None, so a
    # path that reached for one would fail here instead of being quietly stubbed.
    auth = worker_factory(AuthService, config=config, db=unit_of_work(config, "AUTH_DB_URL"),
                          events=None, subscriptions=None, notifications=None, background=None)
    billing = worker_factory(BillingService, config=config, db=unit_of_work(config, "BILLING_DB_URL"),
                             events=None, processors=None, subscriptions=None)
    subscriptions = worker_factory(SubscriptionsService, config=config,
                                   db=unit_of_work(config, "SUBSCRIPTIONS_DB_URL"),
                                   events=None, billing=None, renewal_pass=None)

    services = InProcess(billing=billing, subscriptions=subscriptions)

    # As many requests at once as a gateway process has workers (config max_workers);
    # connections, as with nameko's server, are not limited.
    workers = eventlet.semaphore.Semaphore(int(config["max_workers"]))

    def app(environ, start_response):
        with workers:
            return answer(environ, start_response)

    def answer(environ, start_response):
        request = Request(environ)
        try:
            endpoint, values = ROUTES.bind_to_environ(environ).match()
            identity = auth.get_session(bearer_token_from(request))
            if endpoint == "orders":
                response = json_response(views.orders(services, identity))
            else:
                response = json_response(views.subscription_detail(services, identity, values["subscription_id"]))
        except Exception as error:  # noqa: B902 - answered (and logged) as the gateway answers it
            response = error_response(error)
        return response(environ, start_response)

    return app


def main(port):
    logging.basicConfig(level=logging.WARNING)
    listener = eventlet.listen(("127.0.0.1", port))
    print("ready", flush=True)
    wsgi.server(listener, make_app(load_config()), log_output=False, debug=False)


if __name__ == "__main__":
    main(int(sys.argv[1]))
