"""The card form's pages: plain HTML forms that work without JavaScript, framed only
by the portal; in pt-BR, or in English by `?lang=en` (the portal passes its language,
the form keeps it) or the browser's `Accept-Language`. The texts, and the problems
the rules name, are pt-BR message ids translated through `locale/en/LC_MESSAGES/messages.po`."""
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from werkzeug.wrappers import Response

from services.common import i18n
from services.common.i18n import N_
from services.common.urls import origin_of
from services.common.web import http_status

HERE = Path(__file__).parent
STATIC = HERE / "static"
TRANSLATIONS = {locale: i18n.load_translations(HERE / "locale", locale) for locale in i18n.LANGUAGES.values()}

FIELD_LABELS = {
    "number": N_("Número do cartão"),
    "expiry": N_("Validade (MM/AA)"),
    "security_code": "CVV",
    "holder_name": N_("Nome impresso no cartão"),
    "document": N_("CPF ou CNPJ do titular"),
    "email": N_("E-mail do titular"),
    "postal_code": "CEP",
    "address_number": N_("Número do endereço"),
    "phone": N_("Telefone com DDD"),
}
# The fields filled back in after a refusal: never the number or the CVV.
REFILLED_FIELDS = ("expiry", "holder_name", "document", "email", "postal_code", "address_number", "phone")
BRAND_NAMES = {
    "visa": "Visa", "mastercard": "Mastercard", "amex": "American Express", "elo": "Elo",
    "hipercard": "Hipercard", "diners": "Diners Club", "discover": "Discover", "jcb": "JCB",
}

templates = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape())
templates.globals.update(field_labels=FIELD_LABELS, brand_names=BRAND_NAMES)


def content_security_policy(portal_base_url):
    """Only billing's own stylesheet and form target, and only the portal may frame it."""
    return (
        "default-src 'none'; style-src 'self'; form-action 'self'; base-uri 'none'; "
        f"frame-ancestors {origin_of(portal_base_url)}"
    )


def locale_of(request):
    """The page's locale: `lang` of the query or the form, else the browser's, else pt-BR."""
    return i18n.requested_locale(request, request.values.get("lang"))


def page(name, portal_base_url, locale, status=200, **context):
    """`name` rendered in `locale`: the template calls `_` on each text."""
    body = templates.get_template(name).render(
        portal_base_url=portal_base_url.rstrip("/"), _=TRANSLATIONS[locale].gettext,
        lang="en" if locale == "en" else "pt-BR", **context)
    return Response(body, status=status, mimetype="text/html", headers={
        "Content-Security-Policy": content_security_policy(portal_base_url),
        # The form's answers are personal and single-use.
        "Cache-Control": "no-store",
    })


def stylesheet():
    return Response((STATIC / "card.css").read_text(), mimetype="text/css",
                    headers={"Cache-Control": "public, max-age=3600"})


def form_page(portal_base_url, locale, ticket, needs_holder, error=None, fields=None):
    """The card form, with the holder's fields where the processor needs them; `fields`
    fills in what is not secret (never the number or the CVV): the prefill, or after
    a refusal what was typed, with the problems by field."""
    fields = fields or {}
    _ = TRANSLATIONS[locale].gettext
    return page(
        "card_form.html", portal_base_url, locale, status=http_status(error) if error else 200, ticket=ticket,
        errors={name: [_(problem) for problem in problems] for name, problems in error.fields.items()} if error else {},
        message=_(error.message) if error else "",
        needs_holder=needs_holder, values={name: fields.get(name) or "" for name in REFILLED_FIELDS},
    )


def problem_page(portal_base_url, locale, error):
    _ = TRANSLATIONS[locale].gettext
    return page(
        "card_message.html", portal_base_url, locale, status=http_status(error),
        title=_("Não foi possível continuar"), tone="problem", paragraphs=[_(error.message)],
        back_path="/assinaturas", back_label=_("Voltar às assinaturas"),
    )


def _described(card, _):
    return _("%(brand)s final %(last4)s") % {"brand": BRAND_NAMES.get(card.brand, card.brand), "last4": card.last4}


def applied_page(portal_base_url, locale, card, subscription_id):
    _ = TRANSLATIONS[locale].gettext
    return page(
        "card_message.html", portal_base_url, locale, title=_("Cartão salvo"), tone="success",
        paragraphs=[_("O cartão %(card)s agora é a forma de pagamento desta assinatura.") % {
            "card": _described(card, _)}],
        back_path=f"/assinaturas/{subscription_id}", back_label=_("Voltar à assinatura"),
    )


def not_applied_page(portal_base_url, locale, card, subscription_id, error):
    """The card is saved but the subscription still has its old method: say both."""
    _ = TRANSLATIONS[locale].gettext
    return page(
        "card_message.html", portal_base_url, locale, status=http_status(error),
        title=_("Cartão salvo, mas não aplicado"), tone="warning",
        paragraphs=[
            _("Seu cartão %(card)s foi salvo, mas não foi possível defini-lo como forma de pagamento da "
              "assinatura agora.") % {"card": _described(card, _)},
            _(error.message),
            _("A forma de pagamento da assinatura continua a mesma. Tente novamente pela página da assinatura."),
        ],
        back_path=f"/assinaturas/{subscription_id}", back_label=_("Voltar à assinatura"),
    )
