"""The buyer's pages (HTML, pt-BR), rendered from the same RPC answers as the JSON API."""
import mimetypes
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from werkzeug.security import safe_join
from werkzeug.utils import redirect
from werkzeug.wrappers import Response

from gateway import cookies, csrf, formatting
from gateway.schemas import LoginLinkRequest, SessionCreateRequest
from services.common.errors import PortalError, Unauthorized, ValidationFailed
from services.common.validation import load
from services.common.web import http

HERE = Path(__file__).parent
STATIC = HERE / "static"

LOGIN_LINK_ACCEPTED = (
    "Se houver compras com este e-mail, enviaremos um link de acesso em instantes. "
    "O link expira em 10 minutos."
)
WRONG_CODE = "Código incorreto ou expirado. Confira o e-mail e tente de novo."
# The link's page: its URL holds the token, so it is neither cached nor sent onwards.
LANDING_HEADERS = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}

LABELS = {
    "order_status": {
        "pending": "Aguardando pagamento", "pending_confirmation": "Confirmando pagamento",
        "paid": "Pago", "refused": "Recusado", "refunded": "Reembolsado",
        "canceled": "Cancelado", "expired": "Expirado",
    },
    "subscription_status": {
        "active": "Ativa", "past_due": "Pagamento em atraso", "canceled": "Cancelada", "expired": "Encerrada",
    },
    "payment_method": {"credit_card": "Cartão de crédito", "boleto": "Boleto", "pix": "Pix"},
    "card_brand": {
        "visa": "Visa", "mastercard": "Mastercard", "amex": "American Express", "elo": "Elo",
        "hipercard": "Hipercard", "diners": "Diners Club", "discover": "Discover", "jcb": "JCB",
    },
    "periodicity": {1: "mensal", 2: "bimestral", 3: "trimestral", 6: "semestral", 12: "anual"},
}

templates = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape())
templates.filters.update(money=formatting.money, date=formatting.date, date_time=formatting.date_time)
templates.globals.update(LABELS)


def page(name, status=200, headers=None, **context):
    # What every page needs from the request it answers: the CSRF token of its forms
    # and, for a merchant's SSO session, the way back to the merchant.
    request = csrf.current_request()
    context.setdefault("csrf_token", getattr(request, "csrf_token", None))
    context.setdefault("back_link", getattr(request, "back_link", None))
    body = templates.get_template(name).render(**context)
    return Response(body, status=status, headers=headers, mimetype="text/html")


def problem_page(error):
    """A friendly page with a way forward instead of an error code."""
    if isinstance(error, Unauthorized) and error.code == "invalid_sso_ticket":
        return page("problem.html", status=401, title="Acesso expirado", message=error.message,
                    next_url="/", next_label="Entrar com seu e-mail")
    if isinstance(error, Unauthorized):
        return page("problem.html", status=401, title="Link expirado ou inválido",
                    message="Este link de acesso expirou ou já foi usado. Envie um novo para entrar.",
                    next_url="/", next_label="Enviar um novo link")
    return page("problem.html", status=503 if error.code == "service_unavailable" else 400,
                title="Não foi possível concluir", message=error.message,
                next_url="/", next_label="Voltar ao início")


class PortalPages:
    """Mixin of the gateway service: login pages, sessions, orders, subscriptions, static files."""

    def _page_identity(self, request):
        try:
            identity = self._identity(request)
        except Unauthorized:
            return None
        if identity.get("return_url"):
            request.back_link = self._back_link(identity)
        return identity

    def _back_link(self, identity):
        """"Voltar para <merchant>" of a merchant's SSO session."""
        try:
            merchant = self.subscriptions.get_merchant(identity["merchant_id"])
        except PortalError:
            merchant = {}
        label = merchant.get("brand_name") or merchant.get("name") or "a loja"
        return {"url": identity["return_url"], "label": label}

    @http("GET", "/")
    def home(self, request):
        if self._page_identity(request):
            return redirect("/pedidos", code=303)
        return page("login.html")

    @http("POST", "/entrar")
    def ask_for_link(self, request):
        email = request.form.get("email", "").strip()
        try:
            body = load(LoginLinkRequest(), {"email": email})
            nonce = self._request_login_link(request, body["email"])
        except ValidationFailed:
            return page("login.html", status=400, email=email, error="Informe um e-mail válido, como nome@exemplo.com.")
        except PortalError as error:
            return problem_page(error)
        return self._with_login_nonce(page("check_email.html", message=LOGIN_LINK_ACCEPTED), nonce)

    @http("POST", "/entrar/codigo")
    def log_in_with_code(self, request):
        """The code typed on the "check your e-mail" page of the browser that asked."""
        code = request.form.get("code", "").strip()
        try:
            body = load(SessionCreateRequest(), {"code": code})
            started = self._redeem_login(request, code=body["code"])
        except (ValidationFailed, Unauthorized) as error:
            if error.code == "invalid_login_link":
                return problem_page(error)
            return page("check_email.html", status=401, message=LOGIN_LINK_ACCEPTED, error=WRONG_CODE)
        except PortalError as error:
            return problem_page(error)
        return self._with_new_session(redirect("/pedidos", code=303), started)

    @http("GET,HEAD", "/entrar")
    def link_landing(self, request):
        # Opening the link changes nothing: only the button's POST uses the token, so a
        # mail scanner that prefetches links cannot burn it.
        return self._landing(request, request.args.get("token", ""))

    def _landing(self, request, token, status=200, error=None, needs_code=False):
        """The link's page: whose login it is, a button, and the code field when this
        browser is not the one that asked for the link (or auth asked for the code)."""
        try:
            body = load(SessionCreateRequest(), {"token": token})
            described = self.auth.describe_login_link(body["token"])
        except ValidationFailed:
            return self._unreferred(problem_page(Unauthorized("invalid")))
        except PortalError as error:
            return self._unreferred(problem_page(error))
        needs_code = needs_code or not cookies.login_nonce_from(request, self.config["PORTAL_BASE_URL"])
        return page("landing.html", status=status, headers=LANDING_HEADERS, token=body["token"],
                    email_hint=described["email_hint"], needs_code=needs_code, error=error)

    @staticmethod
    def _unreferred(response):
        """`response` to a URL that holds a secret: not cached, not sent as a referrer."""
        response.headers.update(LANDING_HEADERS)
        return response

    @http("POST", "/entrar/confirmar")
    def confirm_login(self, request):
        token = request.form.get("token", "")
        code = request.form.get("code", "").strip() or None
        try:
            body = load(SessionCreateRequest(), {"token": token, "code": code})
            started = self._redeem_login(request, token=body["token"], code=body["code"])
        except ValidationFailed as error:
            if "code" in error.fields:
                return self._landing(request, token, status=401, error=WRONG_CODE, needs_code=True)
            return self._unreferred(problem_page(Unauthorized("invalid")))
        except Unauthorized as error:
            if error.code in ("code_required", "invalid_code"):
                message = WRONG_CODE if error.code == "invalid_code" else None
                return self._landing(request, token, status=401, error=message, needs_code=True)
            return self._unreferred(problem_page(error))
        except PortalError as error:
            return self._unreferred(problem_page(error))
        return self._with_new_session(redirect("/pedidos", code=303), started)

    @http("GET", "/sso/<ticket>")
    def sso_landing(self, request, ticket):
        """A merchant's one-time way in: the only GET that changes state (single use,
        valid seconds, issued server to server)."""
        try:
            started = self._redeem_sso_ticket(request, ticket)
        except PortalError as error:
            return self._unreferred(problem_page(error))
        return self._unreferred(self._with_new_session(redirect("/pedidos", code=303), started))

    @http("POST", "/sair")
    def sign_out(self, request):
        return self._end_current_session(request, redirect("/", code=303))

    @http("GET", "/sessoes")
    def sessions_page(self, request):
        identity = self._page_identity(request)
        if not identity:
            return redirect("/", code=303)
        try:
            sessions = self.auth.list_sessions(identity)
        except PortalError as error:
            return problem_page(error)
        return page("sessions.html", signed_in=True, email=identity["email"], sessions=sessions)

    @http("POST", "/sessoes/<session_id>/encerrar")
    def end_session_page(self, request, session_id):
        identity = self._page_identity(request)
        if not identity:
            return redirect("/", code=303)
        try:
            self.auth.end_session_by_id(identity, session_id)
        except PortalError as error:
            return problem_page(error)
        if session_id == identity["session_id"]:
            return self._end_current_session(request, redirect("/", code=303))
        return redirect("/sessoes", code=303)

    @http("GET", "/pedidos")
    def orders_page(self, request):
        identity = self._page_identity(request)
        if not identity:
            return redirect("/", code=303)
        try:
            orders = self.billing.list_orders(identity)
        except PortalError as error:
            return problem_page(error)
        return page("orders.html", signed_in=True, email=identity["email"], orders=orders)

    @http("GET", "/assinaturas")
    def subscriptions_page(self, request):
        identity = self._page_identity(request)
        if not identity:
            return redirect("/", code=303)
        try:
            subscriptions = self.subscriptions.list_subscriptions(identity)
        except PortalError as error:
            return problem_page(error)
        return page("subscriptions.html", signed_in=True, email=identity["email"], subscriptions=subscriptions)

    @http("GET", "/static/<path:name>")
    def static(self, request, name):
        path = safe_join(str(STATIC), name)
        if path is None or not Path(path).is_file():
            return page("problem.html", status=404, title="Página não encontrada",
                        message="O endereço não existe.", next_url="/", next_label="Voltar ao início")
        mimetype = mimetypes.guess_type(path)[0] or "application/octet-stream"
        return Response(Path(path).read_bytes(), mimetype=mimetype,
                        headers={"Cache-Control": "public, max-age=3600"})
