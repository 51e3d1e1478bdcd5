"""The portal's HTTP face: turns requests into RPC calls and answers as JSON.

Every input is validated here before any RPC; every RPC has a deadline; the buyer's
identity always comes from the session, never from the request body.
"""
import eventlet
from kombu import Connection
from nameko.dependency_providers import Config

from gateway import cookies
from gateway.pages import LOGIN_LINK_ACCEPTED, PortalPages
from gateway.schemas import LoginLinkRequest, SessionCreateRequest
from services.common.errors import ServiceUnavailable, Unauthorized
from services.common.rpc import TimedRpc
from services.common.validation import load
from services.common.web import http, json_response, read_json

SERVICES = ("auth", "subscriptions", "billing", "notifications")



class GatewayService(PortalPages):
    name = "gateway"

    config = Config()
    auth = TimedRpc("auth")
    subscriptions = TimedRpc("subscriptions")
    billing = TimedRpc("billing")
    notifications = TimedRpc("notifications")

    # ---- ops -------------------------------------------------------------------

    @http("GET", "/healthz")
    def healthz(self, request):
        return json_response({"status": "ok"})

    @http("GET", "/readyz")
    def readyz(self, request):
        try:
            with eventlet.Timeout(2), Connection(self.config["AMQP_URI"], connect_timeout=1) as connection:
                connection.connect()
        except (Exception, eventlet.Timeout):
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

    # ---- login -----------------------------------------------------------------

    @http("POST", "/api/v1/auth/login-links")
    def request_login_link(self, request):
        body = load(LoginLinkRequest(), read_json(request))
        self.auth.request_login_link(body["email"], client_address=request.remote_addr)
        return json_response({"message": LOGIN_LINK_ACCEPTED}, status=202)

    @http("POST", "/api/v1/auth/sessions")
    def create_session(self, request):
        body = load(SessionCreateRequest(), read_json(request))
        started = self.auth.redeem_login(
            body["token"], user_agent=request.user_agent.string, client_address=request.remote_addr,
        )
        response = json_response(
            {"session": started["session"], "session_token": started["session_token"]}, status=201,
        )
        cookies.set_session_cookie(
            response, self.config["PORTAL_BASE_URL"], started["session_token"],
            max_age=int(self.config["SESSION_ABSOLUTE_SECONDS"]),
        )
        return response

    @http("DELETE", "/api/v1/auth/sessions/current")
    def end_session(self, request):
        token = cookies.session_token_from(request, self.config["PORTAL_BASE_URL"])
        if token:
            self.auth.end_session(token)
        response = json_response({}, status=204)
        cookies.clear_session_cookie(response, self.config["PORTAL_BASE_URL"])
        return response

    # ---- the buyer's data ------------------------------------------------------

    def _identity(self, request):
        token = cookies.session_token_from(request, self.config["PORTAL_BASE_URL"])
        if not token:
            raise Unauthorized("Faça login para continuar.", code="login_required")
        return self.auth.get_session(token)

    @http("GET", "/api/v1/me/orders")
    def list_orders(self, request):
        identity = self._identity(request)
        return json_response({"orders": self.billing.list_orders(identity)})

    @http("GET", "/api/v1/me/orders/<code>")
    def get_order(self, request, code):
        identity = self._identity(request)
        return json_response({"order": self.billing.get_order(identity, code)})

    @http("GET", "/api/v1/me/subscriptions")
    def list_subscriptions(self, request):
        identity = self._identity(request)
        return json_response({"subscriptions": self.subscriptions.list_subscriptions(identity)})

    @http("GET", "/api/v1/me/subscriptions/<subscription_id>")
    def get_subscription(self, request, subscription_id):
        identity = self._identity(request)
        return json_response({"subscription": self.subscriptions.get_subscription(identity, subscription_id)})
