"""Billing rules as plain functions: no nameko, no SQL.

Problem finders return `{field: [message, ...]}` (empty when all is well) so the
service can answer one `ValidationFailed` naming every field at once.
"""
import base64
import hashlib
import hmac
import re
import secrets
import string
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from services.billing.processors import ACCOUNT_PROCESSORS, CardHolder, boleto
from services.common.documents import document_key
from services.common.i18n import N_
from services.common.identity import InvalidEmail, normalize_email

ORDER_STATUSES = (
    "pending", "pending_confirmation", "paid", "refused", "partially_refunded", "refunded", "canceled", "expired",
)
# Statuses in which money has changed hands, so the order has a payment date.
SETTLED_STATUSES = ("paid", "partially_refunded", "refunded")
PAYMENT_METHODS = ("credit_card", "boleto", "pix")
# The fields each method needs; a method may carry no field of another.
METHOD_FIELDS = {
    "credit_card": ("card_brand", "card_last4"),
    "boleto": ("boleto_line", "boleto_due_date"),
    "pix": ("pix_code",),
}
CARD_ONLY_FIELDS = ("card_exp", "token", "customer_ref")

ORDER_CODE_PREFIX = "PED-"
# 5 random bytes are exactly 8 base32 characters: 2**40 codes, no padding.
ORDER_CODE_BYTES = 5
ORDER_CODE = re.compile(r"^PED-[A-Z2-7]{8}$")
BOLETO_LINE_DIGITS = 47


def new_order_code(random_bytes=secrets.token_bytes):
    """A short code buyers can read and say ("PED-7KQ2M4ZA"), from a CSPRNG.

    Random rather than sequential, so a code reveals neither sales volume nor its
    neighbours; the database's unique index settles the rare collision.
    """
    return ORDER_CODE_PREFIX + base64.b32encode(random_bytes(ORDER_CODE_BYTES)).decode("ascii")


def normalize_boleto_line(raw):
    """The 47 digits of a boleto's linha digitável, without its dots and spaces."""
    digits = re.sub(r"[.\s]", "", raw or "")
    if not (digits.isdigit() and len(digits) == BOLETO_LINE_DIGITS):
        raise ValueError(f"A boleto line has {BOLETO_LINE_DIGITS} digits.")
    return digits


def boleto_barcode(order):
    """The 44 digits of an order's boleto barcode: as the processor gave them, else
    derived from its line (a checkout's order carries only the line) when every check
    digit of the line is right; None for no boleto or a line that is wrong."""
    if order.boleto_barcode:
        return order.boleto_barcode
    if order.boleto_line and boleto.line_is_valid(order.boleto_line):
        return boleto.barcode_from_line(order.boleto_line)
    return None


def payment_problems(payment):
    """Each method carries its own fields and none of another's."""
    method = payment["method"]
    problems = {
        field: [f"Required for {method}."]
        for field in METHOD_FIELDS[method] if not payment.get(field)
    }
    foreign = [
        field
        for other, fields in METHOD_FIELDS.items() if other != method
        for field in fields
    ]
    if method != "credit_card":
        foreign += CARD_ONLY_FIELDS
    for field in foreign:
        if payment.get(field):
            problems[field] = [f"Not for {method}."]
    return problems


def order_problems(order):
    """Rules an order registered by a checkout must keep, beyond each field's shape."""
    problems = {}
    payment_errors = payment_problems(order["payment"])
    if payment_errors:
        problems["payment"] = payment_errors
    if order["installments"] > 1 and order["payment"]["method"] != "credit_card":
        problems["installments"] = ["Installments are for credit_card only."]
    if order.get("paid_at") and order["status"] not in SETTLED_STATUSES:
        problems["paid_at"] = [f"Only for an order that is {' or '.join(SETTLED_STATUSES)}."]
    if (order.get("subscription_id") is None) != (order.get("cycle_number") is None):
        problems["cycle_number"] = ["An order of a subscription names its cycle, and only such an order."]
    return problems


def paid_at(status, given_paid_at, created_at):
    """When a settled order was paid: as given, or when it was created."""
    if status not in SETTLED_STATUSES:
        return None
    return given_paid_at or created_at


# -- cards (the number and security code live only in memory, while tokenizing)

CARD_NUMBER_LENGTHS = range(13, 20)
MAX_YEARS_AHEAD = 20
# Issuer prefixes, most specific first: Elo and Hipercard ranges sit inside Visa's,
# Discover's and Diners' (ISO/IEC 7812 IINs as the brands publish them).
BRAND_PREFIXES = (
    ("elo", (
        "401178", "401179", "431274", "438935", "451416", "457393", "457631", "457632",
        "504175", "627780", "636297", "636368",
        *map(str, range(506699, 506779)), *map(str, range(509000, 510000)),
        *map(str, range(650031, 650034)), *map(str, range(650035, 650052)),
        *map(str, range(650405, 650440)), *map(str, range(650485, 650539)),
        *map(str, range(650541, 650599)), *map(str, range(650700, 650719)),
        *map(str, range(650720, 650728)), *map(str, range(650901, 650921)),
        *map(str, range(651652, 651680)), *map(str, range(655000, 655020)),
        *map(str, range(655021, 655059)),
    )),
    ("hipercard", ("606282", "384100", "384140", "384160", "637095", "637568", "637599", "637609", "637612")),
    ("amex", ("34", "37")),
    ("diners", ("300", "301", "302", "303", "304", "305", "36", "38", "39")),
    ("jcb", tuple(map(str, range(3528, 3590)))),
    ("discover", ("6011", "644", "645", "646", "647", "648", "649", "65")),
    ("mastercard", ("51", "52", "53", "54", "55", *map(str, range(2221, 2721)))),
    ("visa", ("4",)),
)


def digits_only(raw):
    """What the buyer typed, without the spaces and dashes people group digits with."""
    return re.sub(r"[\s-]", "", raw or "")


def luhn_is_valid(number):
    """The mod-10 (Luhn) check every card number carries in its last digit."""
    if not number.isdigit():
        return False
    total = 0
    for position, digit in enumerate(reversed(number)):
        value = int(digit) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def card_brand(number):
    """The brand of a card number by its issuer prefix, or None."""
    for brand, prefixes in BRAND_PREFIXES:
        if number.startswith(prefixes):
            return brand
    return None


def parse_expiry(raw, today):
    """`MM/AA` (or MM/AAAA) → (month, year), valid through the end of that month and
    at most 20 years ahead; ValueError with the buyer-facing reason otherwise."""
    match = re.fullmatch(r"\s*(\d{1,2})\s*/\s*(\d{2}|\d{4})\s*", raw or "")
    if not match:
        raise ValueError(N_("Use o formato MM/AA."))
    month, year = int(match.group(1)), int(match.group(2))
    year += 2000 if year < 100 else 0
    if not 1 <= month <= 12:
        raise ValueError(N_("O mês vai de 01 a 12."))
    if (year, month) < (today.year, today.month):
        raise ValueError(N_("Este cartão está vencido."))
    if year > today.year + MAX_YEARS_AHEAD:
        raise ValueError(N_("Confira o ano de validade."))
    return month, year


def card_problems(number, expiry, security_code, holder_name, today):
    """Buyer-facing problems of typed card fields, by form field name."""
    problems = {}
    if not (len(number) in CARD_NUMBER_LENGTHS and luhn_is_valid(number)):
        problems["number"] = [N_("Confira o número do cartão.")]
    elif card_brand(number) is None:
        problems["number"] = [N_("Bandeira de cartão não aceita.")]
    try:
        parse_expiry(expiry, today)
    except ValueError as error:
        problems["expiry"] = [str(error)]
    if not re.fullmatch(r"\d{3,4}", security_code or ""):
        problems["security_code"] = [N_("O CVV tem 3 ou 4 dígitos.")]
    if not (holder_name or "").strip():
        problems["holder_name"] = [N_("Informe o nome como está impresso no cartão.")]
    elif len(holder_name.strip()) > 100:
        problems["holder_name"] = [N_("Use até 100 caracteres.")]
    return problems


# -- the card's holder, for processors whose tokenization needs one (Asaas)

# The form's fields for the holder, besides the card's `holder_name`.
HOLDER_FIELDS = ("document", "email", "postal_code", "address_number", "phone")
CEP = re.compile(r"^\d{5}-?\d{3}$")
MAX_ADDRESS_NUMBER = 20
# Spelled out: the message is a catalog id (locale/), the same in every call.
ADDRESS_NUMBER_TOO_LONG = N_("Use até 20 caracteres.")
# A Brazilian phone: area code (DDD, no leading 0) and 8 or 9 digits, perhaps after +55.
PHONE = re.compile(r"^(?:55)?([1-9]\d{9,10})$")
PHONE_PUNCTUATION = re.compile(r"[\s()+.-]")


def holder_problems(fields):
    """Buyer-facing problems of the holder's typed fields, by form field name."""
    problems = {}
    document = (fields.get("document") or "").strip()
    try:
        document_key(document)
    except ValueError:
        problems["document"] = [N_("Informe o CPF ou CNPJ do titular.") if not document
                                else N_("CPF ou CNPJ inválido: confira os números.")]
    try:
        normalize_email(fields.get("email"))
    except InvalidEmail as error:
        problems["email"] = [str(error)]
    if not CEP.fullmatch((fields.get("postal_code") or "").strip()):
        problems["postal_code"] = [N_("Informe o CEP com 8 dígitos, como 01310-100.")]
    number = (fields.get("address_number") or "").strip()
    if not number:
        problems["address_number"] = [N_("Informe o número do endereço (ou S/N).")]
    elif len(number) > MAX_ADDRESS_NUMBER:
        problems["address_number"] = [ADDRESS_NUMBER_TOO_LONG]
    if not PHONE.fullmatch(PHONE_PUNCTUATION.sub("", fields.get("phone") or "")):
        problems["phone"] = [N_("Informe o telefone com DDD: 10 ou 11 dígitos, como (11) 98765-4321.")]
    return problems


def card_holder(fields):
    """The `CardHolder` of form fields `holder_problems` found none in."""
    return CardHolder(
        name=fields["holder_name"].strip(), email=normalize_email(fields["email"]),
        document=document_key(fields["document"]), postal_code=digits_only(fields["postal_code"]),
        address_number=fields["address_number"].strip(),
        phone=PHONE.fullmatch(PHONE_PUNCTUATION.sub("", fields["phone"])).group(1),
    )


def expiry_text(month, year):
    """How billing keeps an expiry: MM/YYYY."""
    return f"{month:02d}/{year}"


def sale_card_problems(payment, account_id, known, card_customers):
    """Problems of a sale's card (`payment`: token, customer_ref) against the merchant's
    processor account (`account_id`, None: the installation's processor, whose cards
    belong to customers of its own if `card_customers`), by field; `known`: the payment
    method billing already has under the token, or None."""
    problems = {}
    if known is not None and known.processor_account_id != account_id:
        problems["token"] = ["Issued through another processor account than this merchant's."]
    customer_ref = payment.get("customer_ref")
    if card_customers and not customer_ref:
        problems["customer_ref"] = ["Required: the processor's customer the card belongs to."]
    elif not card_customers and customer_ref:
        problems["customer_ref"] = ["This merchant's processor has no customers: leave it out."]
    elif known is not None and known.customer_ref != customer_ref:
        problems["customer_ref"] = ["Not the customer the card belongs to."]
    return problems


# -- charges

CHARGE_KINDS = ("plan_change", "renewal", "retry")
# What a processor's answer about a charge makes of the order waiting for it. An
# order settled once is never settled again, whoever asks (caller, reconciler, callback).
SETTLEMENTS = {
    "pending_confirmation": {"paid": "paid", "refused": "refused", "pending": "pending"},
    "pending": {"paid": "paid"},
}
# The event each settlement records; "pending": a boleto or pix issued by a charge
# (a renewal, a plan change) is now payable, so its buyer gets it to pay.
EVENT_OF_STATUS = {"paid": "order_paid", "refused": "charge_failed", "pending": "order_awaiting_payment"}
# A charge the processor has no record of this long after it was claimed was never
# sent (the process died first): send it again, under the same key.
RESUBMIT_AFTER = timedelta(minutes=2)
BOLETO_DUE_DAYS = 3
# Banks count a boleto's due day in Brasília time.
BOLETO_TIMEZONE = ZoneInfo("America/Sao_Paulo")


def claimed_status(amount_cents):
    """A charge of nothing is paid at once; any other waits for the processor."""
    return "paid" if amount_cents == 0 else "pending_confirmation"


def settled_status(current, processor_status):
    """The order's new status for the processor's answer, or None to leave it."""
    return SETTLEMENTS.get(current, {}).get(processor_status)


def reconcile_action(claimed_at, now, processor_status):
    """For an order still `pending_confirmation`: settle it by what the processor
    knows, send it again under its key if the processor never heard of it, or wait."""
    if processor_status is not None:
        return "settle"
    return "resubmit" if now - claimed_at >= RESUBMIT_AFTER else "wait"


def charge_problems(request):
    """Rules of a charge request beyond each field's shape."""
    problems = {}
    card = request["method"] == "credit_card"
    if request["installments"] > 1 and not card:
        problems["installments"] = ["Installments are for credit_card only."]
    if card and request["amount_cents"] > 0 and not request.get("payment_token"):
        problems["payment_token"] = ["Required for credit_card."]
    if not card and request.get("payment_token"):
        problems["payment_token"] = ["Only for credit_card."]
    if card and request.get("due_at"):
        problems["due_at"] = ["Only for boleto and pix."]
    return problems


def boleto_due_date(due_at, now):
    """The day a boleto is due: that of `due_at`, or BOLETO_DUE_DAYS from now."""
    when = due_at or now + timedelta(days=BOLETO_DUE_DAYS)
    return when.astimezone(BOLETO_TIMEZONE).date()


# -- refunds

# pending: asked of the processor (or its answer lost); pending_manual: the processor
# cannot return it by itself (it needs the buyer's bank data, or the order was never
# charged through a processor of ours), so the merchant does it; done and failed are final.
REFUND_STATUSES = ("pending", "pending_manual", "done", "failed")
REFUND_ACTORS = ("merchant", "system", "operator")
# Orders whose payment can still be (partly) given back.
REFUNDABLE_STATUSES = ("paid", "partially_refunded")
# What the processor's answer about a refund makes of it; a final refund stays final.
REFUND_SETTLEMENTS = {
    "pending": {"done": "done", "failed": "failed", "pending_manual": "pending_manual"},
    "pending_manual": {"done": "done", "failed": "failed"},
}


def refund_key(refund_id):
    """The key a refund is asked of the processor under (its idempotency key there)."""
    return f"refund:{refund_id}"


# A paid order its subscription could not take is refunded once, under its own key.
NOT_APPLIED_REASON = "Pagamento não aplicado à assinatura"


def not_applied_refund_key(order_code):
    return f"payment_not_applied:{order_code}"


def refund_amount(requested_cents, paid_cents, committed_cents):
    """What a refund request gives back: the amount asked, or all that is left."""
    return paid_cents - committed_cents if requested_cents is None else requested_cents


def refund_problems(order_status, amount_cents, paid_cents, committed_cents):
    """Why a refund of `amount_cents` cannot be asked for an order, by field (empty if
    it can); `committed_cents`: the order's refunds that have not failed. Never more
    than was paid in total."""
    if order_status not in REFUNDABLE_STATUSES:
        return {"code": [f"Only a paid order can be refunded; this one is {order_status}."]}
    left = paid_cents - committed_cents
    if left <= 0:
        return {"code": ["Everything paid is already refunded or being refunded."]}
    if amount_cents > left:
        return {"amount_cents": [f"At most {left}: what is paid and not yet refunded or being refunded."]}
    return {}


def settled_refund_status(current, processor_status):
    """The refund's new status for the processor's answer, or None to leave it."""
    return REFUND_SETTLEMENTS.get(current, {}).get(processor_status)


def refunded_status(paid_cents, done_cents):
    """What an order becomes when a refund of it is confirmed."""
    return "refunded" if done_cents >= paid_cents else "partially_refunded"


# -- card entry

TICKET_MAX_ATTEMPTS = 5


def secret_digest(secret):
    """What is kept of a bearer secret (a card-entry ticket): its SHA-256, never itself."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def ticket_refusal(expires_at, used_at, attempts, now):
    """Why a card-entry ticket can take no (more) card, or None."""
    if used_at is not None:
        return "used"
    if now >= expires_at:
        return "expired"
    if attempts >= TICKET_MAX_ATTEMPTS:
        return "too_many_attempts"
    return None


def window_start(now, window_seconds):
    """The fixed window `now` falls in, for counting tries per address."""
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % window_seconds, tz=timezone.utc)


# -- processor accounts

# Processors that issue the secret their notifications are signed with (the operator
# copies it from the processor's panel into the account's webhook_token).
SECRET_ISSUING_PROCESSORS = ("mercadopago",)


def processor_account_problems(account):
    """A processor of accounts needs the merchant's API key (and the webhook secret, from
    a processor that issues it); the sandbox takes no secret."""
    processor = account["processor"]
    if processor in ACCOUNT_PROCESSORS:
        needed = ("api_key", "webhook_token") if processor in SECRET_ISSUING_PROCESSORS else ("api_key",)
        return {field: [f"Required for {processor}."] for field in needed if not account.get(field)}
    return {field: [f"Not for {account['processor']}."] for field in ("api_key", "webhook_token") if account.get(field)}


WEBHOOK_TOKEN_LENGTH = 48
WEBHOOK_TOKEN_ALPHABET = string.ascii_letters
REPEATED_RUN = re.compile(r"(.)\1{3}")


def new_webhook_token(choice=secrets.choice):
    """A token for the processor to send back with its callbacks: 48 random letters
    (Asaas takes 32–255 characters, no spaces, no runs of digits or of one letter
    four times), about 273 bits."""
    while True:
        token = "".join(choice(WEBHOOK_TOKEN_ALPHABET) for _ in range(WEBHOOK_TOKEN_LENGTH))
        if not REPEATED_RUN.search(token):
            return token


def webhook_token_matches(expected, given):
    """Constant-time comparison of a callback's token with the account's."""
    return hmac.compare_digest((expected or "").encode("utf-8"), (given or "").encode("utf-8")) and bool(expected)


# -- Mercado Pago's notifications

# Mercado Pago's `ts` is read as milliseconds since the epoch (its documentation and
# example); a notification signed further than the tolerance from now is refused.
MERCADOPAGO_TS_PER_SECOND = 1000


def mercadopago_signature_is_valid(secret, x_signature, x_request_id, data_id, now, tolerance_seconds):
    """Whether `x-signature` (`ts=…,v1=…`) is Mercado Pago's HMAC-SHA256, with the
    account's `secret`, of `id:<data.id>;request-id:<x-request-id>;ts:<ts>;` (a part
    whose value is missing left out; an alphanumeric data.id lowercased), signed
    within `tolerance_seconds` of `now`. Compared in constant time."""
    parts = dict(part.strip().partition("=")[::2] for part in (x_signature or "").split(","))
    ts, given = parts.get("ts", "").strip(), parts.get("v1", "").strip()
    if not (secret and given and ts.isdigit() and len(ts) <= 20):
        return False
    if abs(now.timestamp() - int(ts) / MERCADOPAGO_TS_PER_SECOND) > tolerance_seconds:
        return False
    manifest = "".join(f"{name}:{value};" for name, value in (
        ("id", (data_id or "").lower() if (data_id or "").isalnum() else data_id),
        ("request-id", x_request_id), ("ts", ts)) if value)
    expected = hmac.new(secret.encode("utf-8"), manifest.encode("utf-8"), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode("ascii"), given.lower().encode("ascii", "replace"))


# -- processor callbacks

def callback_signature(secret, body):
    """`sha256=<hex>`: the HMAC-SHA256 of a callback's raw body with the shared secret."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def callback_is_signed(secret, body, signature):
    return hmac.compare_digest(callback_signature(secret, body), signature or "")
