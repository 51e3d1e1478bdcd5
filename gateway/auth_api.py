"""Login routes of the JSON API: ask for a link, redeem it for a session, end it."""
from gateway import cookies
from gateway.pages import LOGIN_LINK_ACCEPTED
from gateway.schemas import LoginLinkRequest, SessionCreateRequest
from services.common.validation import load
from services.common.web import http, json_response, read_json


class AuthRoutes:
    """Mixin of the gateway service."""

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
