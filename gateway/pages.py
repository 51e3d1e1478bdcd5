"""The buyer's pages (HTML, pt-BR), rendered from the same RPC answers as the JSON API."""
import mimetypes
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from werkzeug.security import safe_join
from werkzeug.utils import redirect
from werkzeug.wrappers import Response

from gateway import cookies, formatting
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
    body = templates.get_template(name).render(**context)
    return Response(body, status=status, headers=headers, mimetype="text/html")


def problem_page(error):
    """A friendly page with a way forward instead of an error code."""
    if isinstance(error, Unauthorized):
        return page("problem.html", status=401, title="Link expirado ou inválido",
                    message="Este link de acesso expirou ou já foi usado. Envie um novo para entrar.",
                    next_url="/", next_label="Enviar um novo link")
    return page("problem.html", status=503 if error.code == "service_unavailable" else 400,
                title="Não foi possível concluir", message=error.message,
                next_url="/", next_label="Voltar ao início")


class PortalPages:
    """Mixin of the gateway service: login pages, orders, subscriptions, static files."""

    def _page_identity(self, request):
        try:
            return self._identity(request)
        except Unauthorized:
            return None

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
            self.auth.request_login_link(body["email"], client_address=request.remote_addr)
        except ValidationFailed:
            return page("login.html", status=400, email=email, error="Informe um e-mail válido, como nome@exemplo.com.")
        except PortalError as error:
            return problem_page(error)
        return page("check_email.html", message=LOGIN_LINK_ACCEPTED)

    @http("GET,HEAD", "/entrar")
    def link_landing(self, request):
        # Opening the link changes nothing: only the button's POST uses the token, so a
        # mail scanner that prefetches links cannot burn it.
        headers = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}
        return page("landing.html", headers=headers, token=request.args.get("token", ""))

    @http("POST", "/entrar/confirmar")
    def confirm_login(self, request):
        try:
            body = load(SessionCreateRequest(), {"token": request.form.get("token", "")})
            started = self.auth.redeem_login(
                body["token"], user_agent=request.user_agent.string, client_address=request.remote_addr,
            )
        except ValidationFailed:
            return problem_page(Unauthorized("invalid"))
        except PortalError as error:
            return problem_page(error)
        response = redirect("/pedidos", code=303)
        response.headers["Cache-Control"] = "no-store"
        cookies.set_session_cookie(
            response, self.config["PORTAL_BASE_URL"], started["session_token"],
            max_age=int(self.config["SESSION_ABSOLUTE_SECONDS"]),
        )
        return response

    @http("POST", "/sair")
    def sign_out(self, request):
        token = cookies.session_token_from(request, self.config["PORTAL_BASE_URL"])
        if token:
            self.auth.end_session(token)
        response = redirect("/", code=303)
        cookies.clear_session_cookie(response, self.config["PORTAL_BASE_URL"])
        return response

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
