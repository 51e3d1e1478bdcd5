"""Login routes of the JSON API — ask for a link, redeem it (or an SSO ticket) for a
session, list and end sessions — and the steps of the login flow the pages share."""
import secrets

from gateway import cookies, csrf, views
from gateway.pages import LOGIN_LINK_ACCEPTED
from gateway.schemas import LoginLinkRequest, SessionCreateRequest
from services.common.client_address import client_address, trusted_networks
from services.common.validation import load
from services.common.web import http, json_response, read_json

NONCE_BYTES = 32


class AuthRoutes:
    """Mixin of the gateway service."""

    def _client_address(self, request):
        return client_address(request, trusted_networks(self.config["TRUSTED_PROXIES"]))

    def _request_login_link(self, request, email):
        """Ask auth for a login e-mail bound to a fresh nonce, which the caller hands to
        this browser with `_with_login_nonce`: only this browser may then use the link
        without typing the code."""
        nonce = secrets.token_urlsafe(NONCE_BYTES)
        self.auth.request_login_link(email, client_address=self._client_address(request), nonce=nonce)
        return nonce

    def _with_login_nonce(self, response, nonce):
        cookies.set_login_nonce_cookie(
            response, self.config["PORTAL_BASE_URL"], nonce, max_age=int(self.config["LOGIN_LINK_TTL_SECONDS"]),
        )
        return response

    def _redeem_login(self, request, token=None, code=None):
        return self.auth.redeem_login(
            token=token, code=code,
            nonce=cookies.login_nonce_from(request, self.config["PORTAL_BASE_URL"]),
            user_agent=request.user_agent.string, client_address=self._client_address(request),
        )

    def _redeem_sso_ticket(self, request, ticket):
        return self.auth.redeem_sso_ticket(
            ticket, user_agent=request.user_agent.string, client_address=self._client_address(request),
        )

    def _with_new_session(self, response, started):
        """`response` handing the browser its new session (and forgetting the login nonce)."""
        base_url = self.config["PORTAL_BASE_URL"]
        cookies.set_session_cookie(
            response, base_url, started["session_token"], max_age=int(self.config["SESSION_ABSOLUTE_SECONDS"]),
        )
        cookies.clear_login_nonce_cookie(response, base_url)
        response.headers["Cache-Control"] = "no-store"
        return response

    def _end_current_session(self, request, response):
        base_url = self.config["PORTAL_BASE_URL"]
        token = cookies.session_token_from(request, base_url)
        if token:
            self.auth.end_session(token)
        cookies.clear_session_cookie(response, base_url)
        return response

    def _session_answer(self, started, status):
        return self._with_new_session(json_response({
            "session": started["session"],
            "session_token": started["session_token"],
            "csrf_token": csrf.csrf_token(started["session_token"]),
        }, status=status), started)

    @http("POST", "/api/v1/auth/login-links")
    def request_login_link(self, request):
        body = load(LoginLinkRequest(), read_json(request))
        nonce = self._request_login_link(request, body["email"])
        return self._with_login_nonce(json_response({"message": LOGIN_LINK_ACCEPTED}, status=202), nonce)

    @http("POST", "/api/v1/auth/sessions")
    def create_session(self, request):
        body = load(SessionCreateRequest(), read_json(request))
        return self._session_answer(self._redeem_login(request, token=body["token"], code=body["code"]), 201)

    @http("DELETE", "/api/v1/auth/sessions/current")
    def end_session(self, request):
        return self._end_current_session(request, json_response({}, status=204))

    @http("GET", "/api/v1/sso/<ticket>")
    def redeem_sso_ticket(self, request, ticket):
        return self._session_answer(self._redeem_sso_ticket(request, ticket), 200)

    @http("GET", "/api/v1/me/sessions")
    def list_sessions(self, request):
        identity = self._identity(request)
        return json_response(views.sessions(self, identity))

    @http("DELETE", "/api/v1/me/sessions/<session_id>")
    def end_session_by_id(self, request, session_id):
        identity = self._identity(request)
        self.auth.end_session_by_id(identity, session_id)
        response = json_response({}, status=204)
        if session_id == identity["session_id"]:
            cookies.clear_session_cookie(response, self.config["PORTAL_BASE_URL"])
        return response
