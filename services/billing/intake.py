"""A sale's card as a checkout hands it to billing (an order's intake, a subscription's
card put on file), checked against the merchant's processor account before anything
is kept: a card of another account or processor, or without the customer its
processor binds cards to, is refused naming the field."""
from services.billing import domain, store
from services.billing.processors import CardRefused, ProcessorUnavailable
from services.common.errors import ServiceUnavailable, ValidationFailed

# The names a card is kept under → its names in a sale's `card` (services/common/schemas.py).
SALE_CARD_NAMES = {"token": "card_ref", "customer_ref": "customer_ref"}


def check_card(db, processors, merchant_id, payment, as_sale_card):
    """Refuse (ValidationFailed under `payment`, or under `payment.card` when the sale
    sent it so) a card the merchant's account cannot charge; the processor is asked
    only about a card billing does not know yet."""
    if not payment.get("token"):
        return
    with db.transaction() as session:
        account = store.merchant_account(session, merchant_id)
        known = store.cards_by_token(session, [payment["token"]]).get(payment["token"])
    kind = processors.kind_of(account)
    problems = domain.sale_card_problems(payment, account and account.id, known, kind.card_customers)
    if not problems and known is None:
        try:
            processors.for_account(account).check_card(payment["token"], payment["customer_ref"])
        except CardRefused as refused:
            problems = {refused.field: [refused.message]}
        except ProcessorUnavailable:
            raise ServiceUnavailable("The merchant's payment processor did not answer; try again.") from None
    if problems:
        named = {"card": {SALE_CARD_NAMES[name]: messages for name, messages in problems.items()}} \
            if as_sale_card else problems
        raise ValidationFailed("Invalid input: payment.", fields={"payment": named})
