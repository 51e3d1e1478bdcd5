"""The buyer's pages (HTML, pt-BR by default, English on request), rendered from the
view models the JSON API answers (gateway/views.py).

Plain HTML forms with the CSRF token: every page and operation works without
JavaScript (billing's card form, embedded in a frame, is billing's own). A page that
needs a login sends the buyer to log in and, once in, back to where they were going.
An operation the merchant has not enabled is not offered; posting its form anyway
gets the service's refusal as a friendly page.
"""
import mimetypes
import re
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from werkzeug import exceptions as werkzeug_exceptions
from werkzeug.security import safe_join
from werkzeug.utils import redirect
from werkzeug.wrappers import Response

from gateway import cookies, csrf, formatting, i18n, views
from gateway.i18n import N_, _
from gateway.schemas import (
    CANCEL_REASONS, CancelRequest, LoginLinkRequest, PaymentMethodChangeRequest, PlanChangeQuoteRequest,
    PlanChangeRequest, SessionCreateRequest,
)
from services.common import payment_codes
from services.common.errors import NotFound, PortalError, Unauthorized, ValidationFailed
from services.common.validation import load
from services.common.web import error_response, http, http_status

HERE = Path(__file__).parent
STATIC = HERE / "static"
SUBSCRIPTION_PAGE = "/assinaturas/<subscription_id>"
AFTER_LOGIN = "/pedidos"

LOGIN_LINK_ACCEPTED = N_(
    "Se houver compras com este e-mail, enviaremos um link de acesso em instantes. "
    "O link expira em 10 minutos."
)
WRONG_CODE = N_("Código incorreto ou expirado. Confira o e-mail e tente de novo.")
CODE_ALONE_LOCKED = N_(
    "Muitas tentativas com código para este e-mail nas últimas 24 horas. "
    "Para entrar, use o link que enviamos no e-mail."
)
# The link's page: its URL holds the token, so it is neither cached nor sent onwards.
LANDING_HEADERS = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}
ACCENT_COLOR = re.compile(r"^#[0-9A-Fa-f]{6}$")

LABELS = {
    "order_status": {
        "pending": N_("Aguardando pagamento"), "pending_confirmation": N_("Confirmando pagamento"),
        "paid": N_("Pago"), "refused": N_("Recusado"), "partially_refunded": N_("Reembolsado em parte"),
        "refunded": N_("Reembolsado"), "canceled": N_("Cancelado"), "expired": N_("Expirado"),
    },
    "refund_status": {
        "pending": N_("Em andamento"), "pending_manual": N_("Em andamento com o vendedor"),
        "done": N_("Concluído"), "failed": N_("Não concluído"),
    },
    "subscription_status": {
        "active": N_("Ativa"), "past_due": N_("Pagamento em atraso"), "canceled": N_("Cancelada"),
        "expired": N_("Encerrada"),
    },
    "payment_method": {"credit_card": N_("Cartão de crédito"), "boleto": N_("Boleto"), "pix": N_("Pix")},
    "card_brand": {
        "visa": "Visa", "mastercard": "Mastercard", "amex": "American Express", "elo": "Elo",
        "hipercard": "Hipercard", "diners": "Diners Club", "discover": "Discover", "jcb": "JCB",
    },
    "periodicity": {
        1: N_("mensal"), 2: N_("bimestral"), 3: N_("trimestral"), 6: N_("semestral"), 12: N_("anual"),
    },
    "per_period": {
        1: N_("por mês"), 2: N_("a cada 2 meses"), 3: N_("por trimestre"), 6: N_("por semestre"),
        12: N_("por ano"),
    },
    "plan_change_kind": {
        "upgrade": N_("Muda agora; você paga só a diferença até o fim do ciclo"),
        "new_cycle": N_("Muda agora e começa um novo ciclo; o que resta do atual vira crédito"),
        "scheduled": N_("Muda na próxima renovação, sem cobrança agora"),
    },
    "cancel_reason": {
        "too_expensive": N_("Está caro para mim"), "not_using": N_("Não estou usando"),
        "missing_features": N_("Falta algo de que preciso"), "switching_service": N_("Vou usar outro serviço"),
        "technical_issues": N_("Tive problemas técnicos"), "other": N_("Outro motivo"),
    },
    "ended_by": {"buyer": N_("por você"), "merchant": N_("pelo vendedor"), "non_payment": N_("por falta de pagamento")},
    "actor": {"buyer": N_("Você"), "merchant": N_("Vendedor"), "system": N_("Sistema")},
    "activity": {
        "subscription_created": N_("Assinatura criada"),
        "plan_changed": N_("Plano alterado"),
        "plan_change_scheduled": N_("Troca de plano agendada"),
        "plan_change_dropped": N_("Troca de plano desfeita"),
        "payment_method_changed": N_("Forma de pagamento alterada"),
        "cancellation_scheduled": N_("Cancelamento agendado"),
        "cancellation_undone": N_("Cancelamento desfeito"),
        "canceled": N_("Assinatura cancelada"),
        "renewed": N_("Assinatura renovada"),
        "past_due": N_("Pagamento da renovação recusado"),
        "renewal_order_issued": N_("Cobrança da renovação emitida"),
        "payment_retry_failed": N_("Nova tentativa de pagamento recusada"),
        "payment_not_applied": N_("Pagamento recebido, mas não aplicado"),
    },
}

# What the subscription's page says after an operation (`?aviso=`): only these texts.
NOTICES = {
    "payment_method_changed": N_("Forma de pagamento alterada."),
    "paid_now": N_("Forma de pagamento alterada e cobrança em atraso paga. Sua assinatura está ativa."),
    "payment_pending": N_("Forma de pagamento alterada. Pague a cobrança em aberto no histórico de pagamentos."),
    "plan_changed": N_("Plano alterado."),
    "plan_change_scheduled": N_("Troca de plano agendada para a próxima renovação."),
    "plan_change_awaiting_payment": N_("A troca de plano vale assim que o pagamento for confirmado."),
    "plan_change_undone": N_("Troca de plano desfeita. Seu plano continua o mesmo."),
    "cancellation_scheduled": N_("Cancelamento agendado. Você pode desfazê-lo até o fim do ciclo."),
    "canceled": N_("Assinatura cancelada."),
    "cancellation_undone": N_("Cancelamento desfeito. Sua assinatura continua ativa."),
}

# Refusals the pages explain in the buyer's language; others show the service's message.
REFUSALS = {
    "operation_disabled": N_("Esta operação não está disponível para esta assinatura. Fale com o atendimento do vendedor."),
    "quote_expired": N_("Esta cotação não vale mais. Peça uma nova cotação."),
    "charge_declined": N_("O pagamento foi recusado e nada foi alterado. Confira a forma de pagamento ou peça uma nova cotação."),
    "not_found": N_("Não encontramos o que você procurou entre as suas compras."),
    "service_unavailable": N_("O serviço está indisponível agora. Tente novamente em instantes."),
    "csrf_token_invalid": N_("Esta página expirou. Volte, recarregue a página e tente de novo."),
}


def label(table, value):
    """The buyer's word for a code (translated), or the code itself when there is none."""
    text = LABELS[table].get(value)
    return _(text) if text else value


def text_color_on(accent):
    """Black or white, whichever reads better on the merchant's accent color."""
    red, green, blue = (int(accent[i:i + 2], 16) / 255 for i in (1, 3, 5))
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in (red, green, blue)]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    return "#000000" if (luminance + 0.05) / 0.05 >= 1.05 / (luminance + 0.05) else "#ffffff"


templates = Environment(
    loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(), extensions=["jinja2.ext.i18n"],
)
templates.install_gettext_callables(
    lambda message: i18n.translations().gettext(message),
    lambda singular, plural, count: i18n.translations().ngettext(singular, plural, count),
    newstyle=True,
)
templates.filters.update(
    money=formatting.money, date=formatting.date, date_time=formatting.date_time,
    boleto_line=payment_codes.boleto_line_display,
    # Pictures as data: URIs, which the pages' CSP allows for images (gateway/security.py).
    pix_qr=payment_codes.pix_qr_svg_data_uri, boleto_barcode=payment_codes.boleto_barcode_svg_data_uri,
)
templates.globals.update(label=label, cancel_reasons=CANCEL_REASONS)


def page(name, status=200, headers=None, **context):
    # What every page needs from the request it answers: the CSRF token of its forms,
    # the CSP nonce of its inline style, its language and, for a merchant's SSO
    # session, the merchant's name, color and way back.
    request = csrf.current_request()
    context.setdefault("csrf_token", getattr(request, "csrf_token", None))
    context.setdefault("brand", getattr(request, "brand", None))
    context.setdefault("csp_nonce", getattr(request, "csp_nonce", ""))
    locale = i18n.current_locale()
    context.update(lang="en" if locale == "en" else "pt-BR", path=request.path if request else "/")
    body = templates.get_template(name).render(**context)
    response = Response(body, status=status, headers=headers, mimetype="text/html")
    response.headers["Content-Language"] = context["lang"]
    response.vary.update(("Accept-Language", "Cookie"))
    chosen = request is not None and request.args.get("lang")
    if chosen in i18n.LANGUAGES:
        response.set_cookie(i18n.LANGUAGE_COOKIE, chosen, max_age=i18n.LANGUAGE_COOKIE_MAX_AGE, path="/",
                            httponly=True, samesite="Lax", secure=cookies.is_https(request.host_url))
    return response


def problem_page(error, next_url="/", next_label=N_("Voltar ao início")):
    """A friendly page with a way forward instead of an error code."""
    if isinstance(error, Unauthorized) and error.code == "invalid_sso_ticket":
        return page("problem.html", status=401, title=_("Acesso expirado"),
                    message=_("Este acesso da loja expirou ou já foi usado. Entre com seu e-mail."),
                    next_url="/", next_label=_("Entrar com seu e-mail"))
    if isinstance(error, Unauthorized):
        return page("problem.html", status=401, title=_("Link expirado ou inválido"),
                    message=_("Este link de acesso expirou ou já foi usado. Envie um novo para entrar."),
                    next_url="/", next_label=_("Enviar um novo link"))
    code = "not_found" if isinstance(error, NotFound) else error.code
    message = _(REFUSALS[code]) if code in REFUSALS else error.message
    return page("problem.html", status=http_status(error), title=_("Não foi possível concluir"),
                message=message, next_url=next_url, next_label=_(next_label))


def not_found_page():
    return page("problem.html", status=404, title=_("Página não encontrada"), message=_("O endereço não existe."),
                next_url="/", next_label=_("Voltar ao início"))


def form_integer(value):
    """A form's number as an int, or the text itself for the schema to refuse by name."""
    value = (value or "").strip()
    return int(value) if value.isdigit() else value


class PortalPages:
    """Mixin of the gateway service: login pages, orders, subscriptions and their
    operations, sessions, static files."""

    def _page_identity(self, request):
        try:
            identity = self._identity(request)
        except Unauthorized:
            return None
        if identity.get("return_url"):
            request.brand = self._brand(identity)
        return identity

    def _brand(self, identity):
        """The merchant of an SSO session: its name, its color and the way back to it."""
        merchant = views.merchant_profile(self, identity["merchant_id"]) or {}
        accent = merchant.get("accent_color")
        accent = accent if accent and ACCENT_COLOR.match(accent) else None
        return {
            "name": merchant.get("name") or _("a loja"), "return_url": identity["return_url"],
            "accent": accent, "text_color": text_color_on(accent) if accent else None,
        }

    def _to_login(self, request, going_to=None):
        """The login page, remembering where the buyer was going."""
        response = redirect("/", code=303)
        cookies.set_return_path_cookie(response, self.config["PORTAL_BASE_URL"], going_to or request.full_path.rstrip("?"))
        return response

    def _signed_in(self, request, response_for_identity, going_to=None):
        identity = self._page_identity(request)
        if not identity:
            return self._to_login(request, going_to)
        return response_for_identity(identity)

    def _view_page(self, request, template, build):
        """A page showing a view model of the signed-in buyer."""
        def render(identity):
            try:
                model = build(identity)
            except PortalError as error:
                return problem_page(error)
            notice = NOTICES.get(request.args.get("aviso"))
            return page(template, signed_in=True, email=identity["email"], notice=notice and _(notice), **model)

        return self._signed_in(request, render)

    def _operation(self, request, subscription_id, act):
        """Run one of the buyer's operations from a form, then show the subscription
        with what happened; a refusal is a page with the way back."""
        back = f"/assinaturas/{subscription_id}"

        def run(identity):
            try:
                outcome = act(identity)
            except PortalError as error:
                return problem_page(error, next_url=back, next_label=N_("Voltar à assinatura"))
            if isinstance(outcome, Response):
                return outcome
            return redirect(f"{back}?aviso={outcome}", code=303)

        return self._signed_in(request, run, going_to=back)

    def _after_login(self, request, started):
        base_url = self.config["PORTAL_BASE_URL"]
        response = redirect(cookies.return_path_from(request, base_url) or AFTER_LOGIN, code=303)
        cookies.clear_return_path_cookie(response, base_url)
        return self._with_new_session(response, started)

    # -- login

    @http("GET", "/")
    def home(self, request):
        if self._page_identity(request):
            return redirect(AFTER_LOGIN, code=303)
        return page("login.html")

    @http("POST", "/entrar")
    def ask_for_link(self, request):
        email = request.form.get("email", "").strip()
        try:
            body = load(LoginLinkRequest(), {"email": email})
            nonce = self._request_login_link(request, body["email"])
        except ValidationFailed:
            return page("login.html", status=400, email=email,
                        error=_("Informe um e-mail válido, como nome@exemplo.com."))
        except PortalError as error:
            return problem_page(error)
        return self._with_login_nonce(page("check_email.html", message=_(LOGIN_LINK_ACCEPTED)), nonce)

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
            return page("check_email.html", status=401, message=_(LOGIN_LINK_ACCEPTED), error=_(WRONG_CODE))
        except PortalError as error:
            if error.code == "code_login_locked":
                return page("check_email.html", status=http_status(error), message=_(LOGIN_LINK_ACCEPTED),
                            error=_(CODE_ALONE_LOCKED))
            return problem_page(error)
        return self._after_login(request, started)

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
                return self._landing(request, token, status=401, error=_(WRONG_CODE), needs_code=True)
            return self._unreferred(problem_page(Unauthorized("invalid")))
        except Unauthorized as error:
            if error.code in ("code_required", "invalid_code"):
                message = _(WRONG_CODE) if error.code == "invalid_code" else None
                return self._landing(request, token, status=401, error=message, needs_code=True)
            return self._unreferred(problem_page(error))
        except PortalError as error:
            return self._unreferred(problem_page(error))
        return self._after_login(request, started)

    @http("GET", "/sso/<ticket>")
    def sso_landing(self, request, ticket):
        """A merchant's one-time way in: the only GET that changes state (single use,
        valid seconds, issued server to server)."""
        try:
            started = self._redeem_sso_ticket(request, ticket)
        except PortalError as error:
            return self._unreferred(problem_page(error))
        return self._unreferred(self._with_new_session(redirect(AFTER_LOGIN, code=303), started))

    @http("POST", "/sair")
    def sign_out(self, request):
        return self._end_current_session(request, redirect("/", code=303))

    # -- sessions

    @http("GET", "/sessoes")
    def sessions_page(self, request):
        return self._view_page(request, "sessions.html", lambda identity: views.sessions(self, identity))

    @http("POST", "/sessoes/<session_id>/encerrar")
    def end_session_page(self, request, session_id):
        def end(identity):
            try:
                self.auth.end_session_by_id(identity, session_id)
            except PortalError as error:
                return problem_page(error, next_url="/sessoes", next_label=N_("Voltar às sessões"))
            if session_id == identity["session_id"]:
                return self._end_current_session(request, redirect("/", code=303))
            return redirect("/sessoes", code=303)

        return self._signed_in(request, end, going_to="/sessoes")

    # -- orders

    @http("GET", "/pedidos")
    def orders_page(self, request):
        return self._view_page(request, "orders.html", lambda identity: views.orders(self, identity))

    @http("GET", "/pedidos/<code>")
    def order_page(self, request, code):
        return self._view_page(request, "order.html", lambda identity: views.order_detail(self, identity, code))

    @http("GET", "/pedidos/<code>/boleto")
    def boleto_page(self, request, code):
        """The boleto of one of the buyer's orders as a page to print, for a processor
        with no PDF of its own (the sandbox, a checkout's order with only the line)."""
        def build(identity):
            model = views.order_detail(self, identity, code)
            if not model["order"]["payment"].get("boleto_line"):
                raise NotFound("This order has no boleto.")
            return model

        return self._view_page(request, "boleto.html", build)

    # -- subscriptions

    @http("GET", "/assinaturas")
    def subscriptions_page(self, request):
        return self._view_page(request, "subscriptions.html", lambda identity: views.subscriptions(self, identity))

    @http("GET", SUBSCRIPTION_PAGE)
    def subscription_page(self, request, subscription_id):
        return self._view_page(request, "subscription.html",
                               lambda identity: views.subscription_detail(self, identity, subscription_id))

    @http("GET", f"{SUBSCRIPTION_PAGE}/atividade")
    def activity_page(self, request, subscription_id):
        def build(identity):
            return {**views.subscription_detail(self, identity, subscription_id),
                    **views.activity(self, identity, subscription_id)}

        return self._view_page(request, "activity.html", build)

    # -- payment method

    @http("GET", f"{SUBSCRIPTION_PAGE}/forma-de-pagamento")
    def payment_method_page(self, request, subscription_id):
        return self._view_page(request, "payment_method.html",
                               lambda identity: views.subscription_detail(self, identity, subscription_id))

    @http("POST", f"{SUBSCRIPTION_PAGE}/forma-de-pagamento/cartao")
    def card_entry_page(self, request, subscription_id):
        """The same page with billing's card form in a frame, from a one-time ticket."""
        def show_form(identity):
            ticket = self._subscriptions_calling_billing().begin_card_update(identity, subscription_id)
            model = views.subscription_detail(self, identity, subscription_id)
            # Billing's form speaks the page's language (its own pt-BR and English catalog).
            form_url = f"{ticket['form_url']}&lang={'en' if i18n.current_locale() == 'en' else 'pt-BR'}"
            return page("payment_method.html", signed_in=True, email=identity["email"], card_form_url=form_url,
                        headers={"Cache-Control": "no-store"}, **model)

        return self._operation(request, subscription_id, show_form)

    @http("POST", f"{SUBSCRIPTION_PAGE}/forma-de-pagamento")
    def change_payment_method_page(self, request, subscription_id):
        def change(identity):
            body = load(PaymentMethodChangeRequest(), {"method": request.form.get("method", "")})
            answer = self._subscriptions_calling_billing().change_payment_method(
                identity, subscription_id, {"method": body["method"]})
            if answer["order"] is None:
                return "payment_method_changed"
            return "paid_now" if answer["order"]["status"] == "paid" else "payment_pending"

        return self._operation(request, subscription_id, change)

    # -- plan change

    @http("GET", f"{SUBSCRIPTION_PAGE}/plano")
    def plan_options_page(self, request, subscription_id):
        def build(identity):
            return {**views.subscription_detail(self, identity, subscription_id),
                    **views.plan_options(self, identity, subscription_id)}

        return self._view_page(request, "plan_options.html", build)

    @http("POST", f"{SUBSCRIPTION_PAGE}/plano/cotacao")
    def plan_quote_page(self, request, subscription_id):
        """The quote, shown before the buyer confirms it."""
        def quote(identity):
            body = load(PlanChangeQuoteRequest(), {"offer_id": request.form.get("offer_id", "")})
            quoted = self.subscriptions.quote_plan_change(identity, subscription_id, body["offer_id"])
            model = {**views.subscription_detail(self, identity, subscription_id),
                     **views.plan_options(self, identity, subscription_id)}
            offer = next(option for option in model["options"] if option["id"] == quoted["to_offer_id"])
            return page("plan_quote.html", signed_in=True, email=identity["email"], quote=quoted, offer=offer,
                        headers={"Cache-Control": "no-store"}, **model)

        return self._operation(request, subscription_id, quote)

    @http("POST", f"{SUBSCRIPTION_PAGE}/plano")
    def change_plan_page(self, request, subscription_id):
        def change(identity):
            body = load(PlanChangeRequest(), {
                "quote_id": request.form.get("quote_id", ""),
                "installments": form_integer(request.form.get("installments", "1")),
            })
            answer = self._subscriptions_calling_billing().change_plan(
                identity, subscription_id, body["quote_id"], body["installments"])
            pending = answer["subscription"]["pending_plan_change"]
            if pending is None:
                return "plan_changed"
            return "plan_change_scheduled" if pending["status"] == "scheduled" else "plan_change_awaiting_payment"

        return self._operation(request, subscription_id, change)

    @http("POST", f"{SUBSCRIPTION_PAGE}/plano/desfazer")
    def undo_plan_change_page(self, request, subscription_id):
        def undo(identity):
            self.subscriptions.undo_plan_change(identity, subscription_id)
            return "plan_change_undone"

        return self._operation(request, subscription_id, undo)

    # -- cancellation

    @http("GET", f"{SUBSCRIPTION_PAGE}/cancelar")
    def cancel_page(self, request, subscription_id):
        return self._view_page(request, "cancel.html",
                               lambda identity: views.subscription_detail(self, identity, subscription_id))

    @http("POST", f"{SUBSCRIPTION_PAGE}/cancelar")
    def cancel_subscription_page(self, request, subscription_id):
        def cancel(identity):
            body = load(CancelRequest(), {
                "reason": request.form.get("reason") or None,
                "comment": request.form.get("comment", "").strip() or None,
            })
            answer = self.subscriptions.cancel(identity, subscription_id, body)
            return "cancellation_scheduled" if answer["subscription"]["cancel_at_period_end"] else "canceled"

        return self._operation(request, subscription_id, cancel)

    @http("POST", f"{SUBSCRIPTION_PAGE}/cancelar/desfazer")
    def undo_cancel_page(self, request, subscription_id):
        def undo(identity):
            self.subscriptions.undo_cancel(identity, subscription_id)
            return "cancellation_undone"

        return self._operation(request, subscription_id, undo)

    # -- static files, and any other address

    @http("GET", "/<path:unknown>")
    def unknown_page(self, request, unknown):
        """An address that is no page: a friendly page for a browser, JSON for the API."""
        if unknown.startswith("api/"):
            return error_response(werkzeug_exceptions.NotFound())
        return not_found_page()

    @http("GET", "/static/<path:name>")
    def static(self, request, name):
        path = safe_join(str(STATIC), name)
        if path is None or not Path(path).is_file():
            return not_found_page()
        mimetype = mimetypes.guess_type(path)[0] or "application/octet-stream"
        return Response(Path(path).read_bytes(), mimetype=mimetype,
                        headers={"Cache-Control": "public, max-age=3600"})
