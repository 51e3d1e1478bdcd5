"""What the subscriptions handlers (handlers.py) are asked to do, one class per
operation: plain, validated data (the service loads it through schemas.py first)."""
from dataclasses import dataclass, field


@dataclass(frozen=True)
class CreateSubscription:
    """A checkout registers a subscription: `subscription` as SubscriptionInputSchema
    loaded it (a repeat of its external_id answers the first); `card_as_sale_card`: the
    checkout sent its card as `card` (billing then names a refused field so too)."""

    subscription: dict
    card_as_sale_card: bool = False


@dataclass(frozen=True)
class BuyerCommand:
    # The session's identity (e-mail, merchant scope): only its own subscriptions are found.
    identity: dict
    subscription_id: str
    # Who acts: the buyer, or the merchant on the buyer's behalf (its support, with its
    # API key: the merchant's self-service settings do not bind it). The payment method
    # also changes through billing's card form, as the buyer's.
    actor: str = field(default="buyer", kw_only=True)


@dataclass(frozen=True)
class Cancel(BuyerCommand):
    reason: str | None = None
    comment: str | None = None
    # When it takes effect: at the period's end (True) or now (False); None: as the
    # merchant's cancel mode says (the buyer's cancellation).
    at_period_end: bool | None = None


@dataclass(frozen=True)
class UndoCancel(BuyerCommand):
    pass


@dataclass(frozen=True)
class PlanOptions(BuyerCommand):
    pass


@dataclass(frozen=True)
class QuotePlanChange(BuyerCommand):
    offer_id: str


@dataclass(frozen=True)
class ChangePlan(BuyerCommand):
    quote_id: str
    installments: int = 1


@dataclass(frozen=True)
class UndoPlanChange(BuyerCommand):
    pass


@dataclass(frozen=True)
class ChangePaymentMethod(BuyerCommand):
    method: str
    card_token: str | None = None


@dataclass(frozen=True)
class BeginCardUpdate(BuyerCommand):
    pass


@dataclass(frozen=True)
class NoteLoginLinkRequested:
    """The merchant asks for its buyer's login e-mail (auth sends it): noted in the
    activity of each of the buyer's subscriptions at the merchant."""

    merchant_id: str
    email: str
    actor: str


@dataclass(frozen=True)
class SettleOrder:
    """billing reports an order of ours `order_paid` or `charge_failed` (`event_type`)."""

    event_id: str
    event_type: str
    order: dict


@dataclass(frozen=True)
class RenewDueBatch:
    """Charge the next `batch_size` subscriptions due in this pass, claimed after
    `position` (handlers.ClaimPosition, shared by the pass's batches)."""

    batch_size: int
    billing_timeout: float
    position: object
