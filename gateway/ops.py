"""Ops routes: liveness, readiness (the broker answers on the process's link) and every
service's health."""
from services.common.errors import ServiceUnavailable
from services.common.web import http, json_response

SERVICES = ("auth", "subscriptions", "billing", "notifications")


class OpsRoutes:
    """Mixin of the gateway service."""

    @http("GET", "/healthz")
    def healthz(self, request):
        return json_response({"status": "ok"})

    @http("GET", "/readyz")
    def readyz(self, request):
        if not self.broker_answers():
            return json_response({"status": "unavailable", "broker": "unreachable"}, status=503)
        return json_response({"status": "ok", "broker": "connected"})

    @http("GET", "/status")
    def status(self, request):
        timeout = float(self.config.get("STATUS_TIMEOUT", 1))
        pending = {}
        for service in SERVICES:
            try:
                pending[service] = getattr(self, service).with_timeout(timeout).ping.call_async()
            except ServiceUnavailable:
                pending[service] = None
        answers = {}
        for service, call in pending.items():
            try:
                call.result() if call else None
                answers[service] = "ok" if call else "unavailable"
            except ServiceUnavailable:
                answers[service] = "unavailable"
        down = sorted(name for name, state in answers.items() if state != "ok")
        if not down:
            return json_response({"status": "ok", "services": answers})
        return json_response({
            "status": "degraded",
            "services": answers,
            "error": {
                "code": "service_unavailable",
                "message": f"Not answering within {timeout:g}s: {', '.join(down)}.",
                "fields": {"services": down},
            },
        }, status=503)
