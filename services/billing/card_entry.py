"""Card entry: a one-time ticket, the form it opens, and the card it lets one buyer add.

The form asks for what the merchant's processor needs: the card, and for a processor
that tokenizes for a customer of its own (Asaas) the holder's CPF/CNPJ, e-mail, CEP,
address number and phone too, prefilled from the buyer as the subscription's latest
order recorded them (the checkout's contact).

The card number and security code pass through `submit_card` as arguments and the
`Card` handed to the processor, and nowhere else: they are not stored, logged, put on
the bus or rendered back. Each submission counts against the ticket (5 tries) and
the client address (per window) before the card is even looked at, so the form
cannot be used to test stolen cards.
"""
import secrets
from urllib.parse import urlencode

from services.billing import domain, store
from services.billing.processors import Card, CardRefused, ProcessorUnavailable
from services.common import clock
from services.common.errors import Conflict, NotFound, ServiceUnavailable, TooManyRequests, ValidationFailed
from services.common.i18n import N_

TICKET_BYTES = 32
REFUSALS = {
    "used": (Conflict, N_("Este link de cadastro de cartão já foi usado.")),
    "expired": (NotFound, N_("Este link de cadastro de cartão expirou. Volte à assinatura e comece de novo.")),
    "too_many_attempts": (TooManyRequests, N_("Muitas tentativas com este link. Volte à assinatura e comece de novo.")),
}


class FormProblems(ValidationFailed):
    """The typed fields' problems by field; `needs_holder`: whether the form shown
    again asks for the holder's details."""

    def __init__(self, fields, needs_holder):
        super().__init__(N_("Confira os dados do cartão."), fields=fields)
        self.needs_holder = needs_holder


def refused(reason):
    error_class, message = REFUSALS[reason]
    return error_class(message, code=f"ticket_{reason}")


def usable(row, now):
    """The ticket row if it can still take a card, else the refusal as an error."""
    if row is None:
        raise NotFound(N_("Link de cadastro de cartão inválido."), code="ticket_not_found")
    refusal = domain.ticket_refusal(row.expires_at, row.used_at, row.attempts, now)
    if refusal:
        raise refused(refusal)
    return row


def issue_ticket(db, request, ttl_seconds, public_url):
    ticket = secrets.token_urlsafe(TICKET_BYTES)
    with db.transaction() as session:
        row = store.add_ticket(session, request, domain.secret_digest(ticket), clock.now(), ttl_seconds)
    return {
        "ticket": ticket,
        "form_url": f"{public_url.rstrip('/')}/card?{urlencode({'ticket': ticket})}",
        "expires_at": row.expires_at,
    }


def open_form(db, processors, ticket):
    """What the ticket's form asks → (needs_holder, the holder's fields prefilled)."""
    with db.transaction() as session:
        row = usable(store.ticket_by_digest(session, domain.secret_digest(ticket or "")), clock.now())
        if not processors.kind_of(store.merchant_account(session, row.merchant_id)).needs_holder:
            return False, {}
        return True, holder_prefill(row.email, row.holder, store.latest_buyer(session, row))


def holder_prefill(email, known, order):
    """The holder's form fields: what the merchant knows of the buyer (`known`, passed with
    the ticket), else what their latest order (or None) says."""
    known = known or {}
    address = (order and order.address) or {}
    from_order = {
        "holder_name": order and order.buyer_name, "document": order and order.buyer_document,
        "postal_code": address.get("postal_code"), "address_number": address.get("number"),
        "phone": order and order.buyer_phone,
    }
    from_merchant = {
        "holder_name": known.get("name"), "document": known.get("document"),
        "postal_code": known.get("postal_code"), "address_number": known.get("address_number"),
        "phone": known.get("phone"),
    }
    return {"email": email, **{field: from_merchant[field] or from_order[field] or "" for field in from_order}}


def submit_card(db, events, processors, ticket, fields, address, limits):
    """Tokenize the typed card for the ticket's buyer, with the merchant's processor:
    (ticket row, payment method).

    `fields` holds the form's number, expiry, security_code and holder_name, and the
    holder's `domain.HOLDER_FIELDS` where the processor needs them; `address` is the
    buyer's (Asaas wants the buyer's IP); `limits` the per-address tries and window
    from the config. FormProblems names the fields to correct.
    """
    row, account = _count_attempt(db, ticket, address, limits)
    needs_holder = processors.kind_of(account).needs_holder
    number = domain.digits_only(fields.get("number"))
    today = clock.now().date()
    problems = domain.card_problems(
        number, fields.get("expiry"), fields.get("security_code"), fields.get("holder_name"), today,
    )
    if needs_holder:
        problems.update(domain.holder_problems(fields))
    if problems:
        raise FormProblems(problems, needs_holder)
    month, year = domain.parse_expiry(fields["expiry"], today)
    card = Card(number=number, exp_month=month, exp_year=year,
                security_code=fields["security_code"], holder_name=fields["holder_name"].strip())
    holder = domain.card_holder(fields) if needs_holder else None
    try:
        tokenized = processors.for_account(account).tokenize(card, holder=holder, remote_ip=address, email=row.email)
    except CardRefused as refused:
        raise FormProblems({refused.field: [refused.message]}, needs_holder) from None
    except ProcessorUnavailable:
        raise ServiceUnavailable(N_("Não foi possível falar com a operadora do cartão. Tente novamente.")) from None
    with db.transaction() as session:
        now = clock.now()
        card_row = store.add_card(session, row, tokenized, account, now)
        if not store.use_ticket(session, row, card_row.id, now):
            raise refused("used")
        events.record(session, "payment_method_added", row.merchant_id, {
            "token": card_row.token, "brand": card_row.brand, "last4": card_row.last4,
            "exp": card_row.exp, "email": card_row.email,
        })
    return row, card_row


def _count_attempt(db, ticket, address, limits):
    """Count this try against the ticket and the address, committed before the card
    is looked at; refuse once either is spent. → (ticket row, the merchant's account)."""
    digest = domain.secret_digest(ticket or "")

    def work(session):
        now = clock.now()
        row = usable(store.ticket_by_digest(session, digest), now)
        # Over the limit, the refusal rolls this count back: the window stays spent.
        if store.count_address_attempt(session, address, now, limits["window_seconds"]) > limits["per_address"]:
            raise TooManyRequests(N_("Muitas tentativas a partir deste endereço. Tente mais tarde."),
                                  code="too_many_attempts")
        store.count_ticket_attempt(session, row)
        return row, store.merchant_account(session, row.merchant_id)

    return db.retry_on_conflict(work)
