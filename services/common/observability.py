"""One correlation id per request, carried through every RPC and event, on every log
line; Prometheus metrics from every process.

Every process runs its services in `ObservedContainer` (config.yaml's
SERVICE_CONTAINER_CLS), so no service has to remember any of this: each worker gets
the caller's correlation id (nameko forwards worker context data as message headers)
or a new one, logs carry it, and its duration is measured by entrypoint and outcome.
"""
import contextvars
import json
import logging
import time
import uuid

import eventlet
from nameko.containers import ServiceContainer
from prometheus_client import Counter, Gauge, Histogram, start_http_server

from services.common.broker_link import stop_without_broker, tolerate_broken_links, unless_link_broke
from services.common.db import Database
from services.common.production import refuse_unsafe_production

log = logging.getLogger(__name__)

CORRELATION_KEY = "correlation_id"
current_correlation_id = contextvars.ContextVar(CORRELATION_KEY, default=None)

WORKER_SECONDS = Histogram(
    "portal_worker_seconds", "Time a service took to handle one RPC, event or HTTP request.",
    ["service", "entrypoint", "outcome"],
)
RPC_CLIENT_SECONDS = Histogram(
    "portal_rpc_call_seconds", "Time a caller waited for an RPC answer.",
    ["target", "method", "outcome"],
)
HTTP_REQUESTS = Counter(
    "portal_http_requests_total", "HTTP requests answered.", ["service", "entrypoint", "status"],
)
OUTBOX_BACKLOG = Gauge(
    "portal_outbox_backlog", "Committed events not yet confirmed by the broker.", ["service"],
)

_metrics_server = {"port": None}
# Seconds a stopping container lets its running work finish before killing it.
DEFAULT_STOP_GRACE_SECONDS = 20


def new_correlation_id():
    return uuid.uuid4().hex


def valid_correlation_id(value):
    """A caller's X-Request-Id, if it is safe to log and forward (short, plain)."""
    if isinstance(value, str) and 8 <= len(value) <= 64 and all(c.isalnum() or c in "-_" for c in value):
        return value
    return None


class ObservedContainer(ServiceContainer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Before anything listens or consumes: PORTAL_ENV=production refuses unsafe settings.
        refuse_unsafe_production(
            self.config, self.service_name,
            secret_settings=getattr(self.service_cls, "secret_settings", ()),
            url_settings=sorted({dependency.url_key for dependency in self.dependencies
                                 if isinstance(dependency, Database)}),
        )
        tolerate_broken_links()
        stop_without_broker()

    def start(self):
        port = int(self.config.get("METRICS_PORT") or 0)
        if port and _metrics_server["port"] is None:
            start_http_server(port)
            _metrics_server["port"] = port
        super().start()

    def stop(self):
        """nameko's graceful stop, within STOP_GRACE_SECONDS: past it, what still runs is
        killed (a killed worker's transaction rolls back and its unacknowledged message
        goes back to the queue), so a process stops in bounded time whatever it waits on."""
        grace = float(self.config.get("STOP_GRACE_SECONDS", DEFAULT_STOP_GRACE_SECONDS))
        with eventlet.Timeout(grace, False):
            super().stop()
        if not self._died.ready():
            log.warning("%s did not stop within %.0f s; killing what still runs", self.service_name, grace)
            self.kill()

    def _run_worker(self, worker_ctx, handle_result):
        correlation_id = worker_ctx.context_data.get(CORRELATION_KEY) or new_correlation_id()
        # Outgoing RPCs and events copy context data into their headers.
        worker_ctx.context_data[CORRELATION_KEY] = correlation_id
        token = current_correlation_id.set(correlation_id)
        outcome = ["ok"]

        def observed(worker_ctx, result, exc_info):
            if exc_info is not None:
                expected = isinstance(exc_info[1], worker_ctx.entrypoint.expected_exceptions)
                outcome[0] = "refused" if expected else "error"
            if handle_result is None:
                return result, exc_info
            # An answer the broker can no longer take is not sent: the request, not
            # acknowledged, is delivered again once the process has reconnected.
            return unless_link_broke(handle_result)(worker_ctx, result, exc_info) or (result, exc_info)

        started = time.perf_counter()
        try:
            super()._run_worker(worker_ctx, observed)
        finally:
            elapsed = time.perf_counter() - started
            entrypoint = worker_ctx.entrypoint.method_name
            WORKER_SECONDS.labels(self.service_name, entrypoint, outcome[0]).observe(elapsed)
            # Names and timing only: arguments may hold secrets.
            log.info("%s.%s %s in %.1f ms", self.service_name, entrypoint, outcome[0], elapsed * 1000)
            current_correlation_id.reset(token)


class CorrelationFilter(logging.Filter):
    """Puts the current worker's correlation id on every record (`-` outside workers)."""

    def filter(self, record):
        record.correlation_id = current_correlation_id.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log collectors."""

    def format(self, record):
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "correlation_id": getattr(record, "correlation_id", "-"),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)

    converter = time.gmtime
