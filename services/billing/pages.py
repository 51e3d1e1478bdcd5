"""The card form's pages: pt-BR, plain HTML forms that work without JavaScript,
framed only by the portal."""
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from werkzeug.wrappers import Response

from services.common.urls import origin_of
from services.common.web import http_status

HERE = Path(__file__).parent
STATIC = HERE / "static"

FIELD_LABELS = {
    "number": "Número do cartão",
    "expiry": "Validade (MM/AA)",
    "security_code": "CVV",
    "holder_name": "Nome impresso no cartão",
    "document": "CPF ou CNPJ do titular",
    "email": "E-mail do titular",
    "postal_code": "CEP",
    "address_number": "Número do endereço",
    "phone": "Telefone com DDD",
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


def page(name, portal_base_url, status=200, **context):
    body = templates.get_template(name).render(portal_base_url=portal_base_url.rstrip("/"), **context)
    return Response(body, status=status, mimetype="text/html", headers={
        "Content-Security-Policy": content_security_policy(portal_base_url),
        # The form's answers are personal and single-use.
        "Cache-Control": "no-store",
    })


def stylesheet():
    return Response((STATIC / "card.css").read_text(), mimetype="text/css",
                    headers={"Cache-Control": "public, max-age=3600"})


def form_page(portal_base_url, ticket, needs_holder, error=None, fields=None):
    """The card form, with the holder's fields where the processor needs them; `fields`
    fills in what is not secret (never the number or the CVV): the prefill, or after
    a refusal what was typed, with the problems by field."""
    fields = fields or {}
    return page(
        "card_form.html", portal_base_url, status=http_status(error) if error else 200,
        ticket=ticket, errors=error.fields if error else {}, message=error.message if error else "",
        needs_holder=needs_holder, values={name: fields.get(name) or "" for name in REFILLED_FIELDS},
    )


def problem_page(portal_base_url, error):
    return page(
        "card_message.html", portal_base_url, status=http_status(error),
        title="Não foi possível continuar", tone="problem", paragraphs=[error.message],
        back_path="/assinaturas", back_label="Voltar às assinaturas",
    )


def _described(card):
    return f"{BRAND_NAMES.get(card.brand, card.brand)} final {card.last4}"


def applied_page(portal_base_url, card, subscription_id):
    return page(
        "card_message.html", portal_base_url, title="Cartão salvo", tone="success",
        paragraphs=[f"O cartão {_described(card)} agora é a forma de pagamento desta assinatura."],
        back_path=f"/assinaturas/{subscription_id}", back_label="Voltar à assinatura",
    )


def not_applied_page(portal_base_url, card, subscription_id, error):
    """The card is saved but the subscription still has its old method: say both."""
    return page(
        "card_message.html", portal_base_url, status=http_status(error),
        title="Cartão salvo, mas não aplicado", tone="warning",
        paragraphs=[
            f"Seu cartão {_described(card)} foi salvo, mas não foi possível defini-lo como forma de "
            "pagamento da assinatura agora.",
            error.message,
            "A forma de pagamento da assinatura continua a mesma. Tente novamente pela página da assinatura.",
        ],
        back_path=f"/assinaturas/{subscription_id}", back_label="Voltar à assinatura",
    )
