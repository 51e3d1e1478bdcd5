"""Each event a buyer should hear about becomes exactly one e-mail, sent through a real
SMTP server, with the merchant's name, amounts in reais, São Paulo dates and links
into the portal; an English-speaking buyer reads it in English; the other events send
nothing."""
import re

import pytest
from services.common.rpc import ClusterRpcProxy
from nameko.testing.services import entrypoint_waiter
from sqlalchemy import func, select

from services.common.db import make_engine
from services.notifications.models import Base
from support.notifications import (
    ANA, BOB, CYCLE_END, CYCLE_START, MERCHANT_ID, PIX_CODE, PORTAL, envelope, identities_seen, merchants_asked, publish,
)
from support.waiting import wait_until

PAYMENT_PAGE = f"{PORTAL}/assinaturas/sub-ana/forma-de-pagamento"


def subscription_event(event_type, subscription_id="sub-ana", email=ANA, **data):
    return envelope(event_type, subscription_id=subscription_id, email=email, actor="buyer", **data)


def order_event(event_type, code, status, method, subscription_id=None, kind=None, email=ANA, **data):
    return envelope(
        event_type, order_id=f"order-{code}", code=code, subscription_id=subscription_id, cycle_number=None,
        kind=kind, idempotency_key=None, amount_cents=123456, status=status, method=method, email=email, **data,
    )


def refund_event(event_type, code, status, **data):
    return envelope(
        event_type, refund_id=f"refund-{code}", order_id=f"order-{code}", code=code, email=ANA, subscription_id=None,
        method="credit_card", amount_cents=20000, order_amount_cents=123456, refunded_cents=20000,
        order_status="partially_refunded", status=status, reason=None, actor="merchant", failure_reason=None, **data,
    )


# (event, source, recipient, subject, what the text must say), one per event type and
# order payment method.
CASES = [
    pytest.param(subscription_event(
        "subscription_plan_changed", from_offer_id="python-basico", to_offer_id="python-premium", kind="upgrade",
        charge_cents=61728, balance_cents=0, order_code=None, cycle_number=1,
        cycle_start=CYCLE_START, cycle_end=CYCLE_END,
    ), "subscriptions", ANA, "Seu plano de Curso de Python foi alterado", [
        "agora está no plano Premium", "Valor: R$ 1.234,56 (mensal)", "Cobrado agora: R$ 617,28",
        "Próxima cobrança: 04/06/2026", f"{PORTAL}/assinaturas/sub-ana",
    ], id="subscription_plan_changed"),
    pytest.param(subscription_event(
        "subscription_plan_change_scheduled", from_offer_id="python-premium", to_offer_id="python-basico",
        takes_effect="cycle_end", effective_at=CYCLE_END, order_code=None,
    ), "subscriptions", ANA, "Troca de plano agendada: Curso de Python", [
        "para o plano Básico foi agendada para 04/06/2026", "Novo valor: R$ 49,90", "desfazer a troca",
    ], id="subscription_plan_change_scheduled"),
    pytest.param(subscription_event(
        "subscription_payment_method_changed", method="credit_card", card_brand="mastercard", card_last4="5454",
        card_exp="12/2030",
    ), "subscriptions", ANA, "Forma de pagamento alterada: Curso de Python", [
        "agora é cartão de crédito Mastercard final 5454", "Próxima cobrança: 04/06/2026",
    ], id="subscription_payment_method_changed"),
    pytest.param(subscription_event(
        "subscription_cancellation_scheduled", effective_at=CYCLE_END, feedback=None, comment=None,
    ), "subscriptions", ANA, "Cancelamento agendado: Curso de Python", [
        "Você continua com acesso até 04/06/2026", "desfazer o cancelamento",
    ], id="subscription_cancellation_scheduled"),
    pytest.param(subscription_event(
        "subscription_canceled", reason="non_payment", feedback=None, comment=None, canceled_at=CYCLE_END,
    ), "subscriptions", ANA, "Assinatura cancelada: Curso de Python", [
        "foi cancelada por falta de pagamento",
    ], id="subscription_canceled"),
    pytest.param(subscription_event(
        "subscription_renewed", offer_id="python-premium", cycle_number=2, cycle_start=CYCLE_END,
        cycle_end="2026-07-04T15:00:00+00:00", amount_cents=123456, order_code="PED-EEEERENO",
    ), "subscriptions", ANA, "Recibo: sua assinatura de Curso de Python foi renovada", [
        "Pedido: PED-EEEERENO", "Valor pago: R$ 1.234,56", "cartão de crédito Visa final 4242",
        "Período: 04/06/2026 a 04/07/2026",
    ], id="subscription_renewed"),
    pytest.param(subscription_event(
        "subscription_past_due", cycle_number=2, attempts=1, next_retry_at="2026-06-05T15:00:00+00:00",
        decline_reason="insufficient_funds", amount_cents=123456, order_code="PED-DDDDRECU",
    ), "subscriptions", ANA, "Pagamento pendente: assinatura de Curso de Python", [
        "Vamos tentar cobrar novamente em 05/06/2026", "Pedido: PED-DDDDRECU", "Valor: R$ 1.234,56",
        "Motivo: saldo ou limite insuficiente", PAYMENT_PAGE,
    ], id="subscription_past_due"),
    pytest.param(subscription_event(
        "subscription_past_due", cycle_number=2, attempts=1, next_retry_at="2026-06-05T15:00:00+00:00",
        decline_reason="payment_method_unusable", amount_cents=123456, order_code=None,
    ), "subscriptions", ANA, "Pagamento pendente: assinatura de Curso de Python", [
        "Vamos tentar cobrar novamente em 05/06/2026", "Valor: R$ 1.234,56",
        "Motivo: a forma de pagamento cadastrada não pode ser usada", PAYMENT_PAGE,
    ], id="subscription_past_due-payment_method_unusable"),
    pytest.param(order_event("order_paid", "PED-AAAAPAGO", "paid", "credit_card"),
                 "billing", ANA, "Pagamento confirmado: pedido PED-AAAAPAGO", [
        "Valor: R$ 1.234,56 em 3x", "Pago em: 04/05/2026", f"{PORTAL}/pedidos/PED-AAAAPAGO",
    ], id="order_paid"),
    pytest.param(refund_event("order_refunded", "PED-AAAAPAGO", "done"),
                 "billing", ANA, "Reembolso confirmado: pedido PED-AAAAPAGO", [
        "Valor reembolsado: R$ 200,00", "Total reembolsado do pedido: R$ 200,00 de R$ 1.234,56",
        f"{PORTAL}/pedidos/PED-AAAAPAGO",
    ], id="order_refunded"),
    pytest.param(order_event("order_created", "PED-BBBBLETO", "pending", "boleto"),
                 "billing", ANA, "Seu boleto de R$ 1.234,56: pedido PED-BBBBLETO", [
        "Pague até 07/05/2026", "00190.00009 01234.567890 12345.678901 2 34560000010000",
        f"{PORTAL}/pedidos/PED-BBBBLETO",
    ], id="order_created-boleto"),
    pytest.param(order_event("order_created", "PED-CCCCCPIX", "pending", "pix"),
                 "billing", ANA, "Seu pix de R$ 1.234,56: pedido PED-CCCCCPIX", [
        PIX_CODE, f"{PORTAL}/pedidos/PED-CCCCCPIX",
    ], id="order_created-pix"),
    # A renewal's boleto, payable once the processor issued it.
    pytest.param(order_event("order_awaiting_payment", "PED-BBBBLETO", "pending", "boleto", "sub-ana", "renewal",
                             settled_at_charge=True),
                 "billing", ANA, "Seu boleto de R$ 1.234,56: pedido PED-BBBBLETO", [
        "Pague até 07/05/2026", "00190.00009 01234.567890 12345.678901 2 34560000010000",
    ], id="order_awaiting_payment-boleto"),
    pytest.param(order_event("charge_failed", "PED-DDDDRECU", "refused", "credit_card", "sub-ana", "plan_change",
                             decline_reason="insufficient_funds"),
                 "billing", ANA, "Não conseguimos cobrar sua assinatura de Curso de Python", [
        "A cobrança de R$ 1.234,56", "saldo ou limite insuficiente", PAYMENT_PAGE,
    ], id="charge_failed"),
]
BOB_PAGE = f"{PORTAL}/assinaturas/sub-bob"
# The same events for an English-speaking buyer: the subscription says `locale: en`.
ENGLISH_CASES = [
    pytest.param(subscription_event(
        "subscription_plan_changed", "sub-bob", BOB, from_offer_id="python-basico", to_offer_id="python-premium",
        kind="upgrade", charge_cents=500, balance_cents=0, order_code=None, cycle_number=1,
        cycle_start=CYCLE_START, cycle_end=CYCLE_END,
    ), "subscriptions", BOB, "Your Python Course plan has changed", [
        "Your Python Course subscription is now on the Premium plan.", BOB_PAGE,
    ], id="en-subscription_plan_changed"),
    pytest.param(subscription_event(
        "subscription_plan_change_scheduled", "sub-bob", BOB, from_offer_id="python-premium",
        to_offer_id="python-basico", takes_effect="cycle_end", effective_at=CYCLE_END, order_code=None,
    ), "subscriptions", BOB, "Plan change scheduled: Python Course", [
        "Until then nothing changes: you stay on the Premium plan.",
    ], id="en-subscription_plan_change_scheduled"),
    pytest.param(subscription_event(
        "subscription_payment_method_changed", "sub-bob", BOB, method="pix", card_brand=None, card_last4=None,
        card_exp=None,
    ), "subscriptions", BOB, "Payment method changed: Python Course", [
        "Your Python Course subscription is now paid by pix.",
    ], id="en-subscription_payment_method_changed"),
    pytest.param(subscription_event(
        "subscription_cancellation_scheduled", "sub-bob", BOB, effective_at=CYCLE_END, feedback=None, comment=None,
    ), "subscriptions", BOB, "Cancellation scheduled: Python Course", [
        "there will be no further charges", BOB_PAGE,
    ], id="en-subscription_cancellation_scheduled"),
    pytest.param(subscription_event(
        "subscription_canceled", "sub-bob", BOB, reason="buyer", feedback=None, comment=None, canceled_at=CYCLE_END,
    ), "subscriptions", BOB, "Subscription canceled: Python Course", [
        "Your Python Course subscription (Premium plan) has been canceled.",
    ], id="en-subscription_canceled"),
    pytest.param(subscription_event(
        "subscription_renewed", "sub-bob", BOB, offer_id="python-premium", cycle_number=2, cycle_start=CYCLE_END,
        cycle_end="2027-06-04T15:00:00+00:00", amount_cents=9900, order_code="PED-BOBRENEW",
    ), "subscriptions", BOB, "Receipt: your Python Course subscription was renewed", [
        "We received the payment for your Python Course subscription's renewal.", "Order: PED-BOBRENEW",
    ], id="en-subscription_renewed"),
    pytest.param(subscription_event(
        "subscription_past_due", "sub-bob", BOB, cycle_number=2, attempts=1,
        next_retry_at="2026-06-05T15:00:00+00:00", decline_reason="insufficient_funds",
        amount_cents=9900, order_code="PED-BOBFAILD",
    ), "subscriptions", BOB, "Payment overdue: Python Course subscription", [
        "Order: PED-BOBFAILD", "Amount: R$99.00", "Reason: insufficient funds or limit", "To keep your access, change the payment method and pay now:", f"{BOB_PAGE}/forma-de-pagamento",
    ], id="en-subscription_past_due"),
    pytest.param(order_event("charge_failed", "PED-BOBFAILD", "refused", "credit_card", "sub-bob", "plan_change",
                             decline_reason="insufficient_funds", email=BOB),
                 "billing", BOB, "We could not charge your Python Course subscription", [
        "was not approved (insufficient funds or limit)", f"{BOB_PAGE}/forma-de-pagamento",
    ], id="en-charge_failed"),
]
# Events no buyer needs an e-mail about (a card order waiting for the processor, the
# payment of a renewal whose receipt `subscription_renewed` sends, the failed charge of a
# renewal that `subscription_past_due` tells, changes undone).
SILENT = [
    pytest.param(order_event("order_created", "PED-FFFFCARD", "pending_confirmation", "credit_card"), "billing",
                 id="order_created-card"),
    # A renewal's boleto before the processor answered: its order_awaiting_payment sends it.
    pytest.param(order_event("order_created", "PED-BBBBLETO", "pending_confirmation", "boleto", "sub-ana", "renewal"),
                 "billing", id="order_created-boleto-not-issued-yet"),
    pytest.param(order_event("order_paid", "PED-EEEERENO", "paid", "credit_card", "sub-ana", "renewal"), "billing",
                 id="order_paid-renewal"),
    pytest.param(order_event("order_paid", "PED-EEEERETR", "paid", "credit_card", "sub-ana", "retry"), "billing",
                 id="order_paid-retry"),
    # A renewal's failed charge is told by `subscription_past_due`, once.
    pytest.param(order_event("charge_failed", "PED-DDDDRECU", "refused", "credit_card", "sub-ana", "renewal",
                             decline_reason="insufficient_funds"), "billing", id="charge_failed-renewal"),
    pytest.param(order_event("charge_failed", "PED-DDDDRETR", "refused", "credit_card", "sub-ana", "retry",
                             decline_reason="insufficient_funds"), "billing", id="charge_failed-retry"),
    # A failed refund is the merchant's to handle (its webhook, portalctl refunds failed).
    pytest.param(refund_event("refund_failed", "PED-AAAAPAGO", "failed"), "billing", id="refund_failed"),
    pytest.param(subscription_event("subscription_created", external_id="x", offer_id="o", status="active",
                                    cycle_end=CYCLE_END), "subscriptions", id="subscription_created"),
    pytest.param(subscription_event("subscription_plan_change_dropped", to_offer_id="python-basico", why="undone"),
                 "subscriptions", id="subscription_plan_change_dropped"),
    pytest.param(subscription_event("subscription_cancellation_undone"), "subscriptions",
                 id="subscription_cancellation_undone"),
]
LOGIN_SECRET = re.compile(r"token|code=|codigo|entrar\?", re.I)


def readable(text):
    # Babel separates "R$" from the amount with a no-break space, as it should.
    return (text or "").replace("\xa0", " ")


@pytest.mark.parametrize("event, source, recipient, subject, sayings", CASES + ENGLISH_CASES)
def test_the_event_becomes_exactly_one_e_mail(
        event, source, recipient, subject, sayings, sink, owning_services, start_notifications):
    config, container = start_notifications(sink.smtp_port)

    with entrypoint_waiter(container, f"on_{event['type']}", timeout=15):
        publish(config["AMQP_URI"], source, event)

    with ClusterRpcProxy(config, timeout=15) as cluster:
        [row] = wait_until(lambda: cluster.notifications.list_outbox(status="sent"), message="the e-mail sent")
        assert cluster.notifications.list_outbox() == [row]
    assert row["event_id"] == event["event_id"]
    [message] = sink.wait_for_messages(1)
    assert sink.message_ids() == [row["message_id"]]

    assert readable(message["subject"]) == subject
    assert message["to"] == [recipient]
    assert message["from"] == "Portal do Cliente <portal@example.com>"
    text, html = readable(message["text"]), readable(message["html"])
    for saying in sayings:
        assert saying in text, saying
    assert "Acme Cursos" in text and "ajuda@acme.example" in text and "+55 11 4000-1234" in text
    assert subject in html
    # Every link goes into the portal (or to the merchant's help), and none carries a login secret.
    assert message["links"]
    assert all(link.startswith((PORTAL, "https://acme.example")) for link in message["links"]), message["links"]
    assert not [link for link in message["links"] if LOGIN_SECRET.search(link) or "?" in link]
    for link in (saying for saying in sayings if saying.startswith(PORTAL)):
        assert f'href="{link}"' in html, link
    # Enrichment asked as the buyer of the event, scoped to its merchant.
    assert {(identity["email"], identity["merchant_id"], identity["session_id"]) for identity in identities_seen} == {
        (recipient, MERCHANT_ID, "notifications")}
    # A subscription's answer names its merchant: the merchant is asked about only without one.
    assert merchants_asked == ([] if event["data"].get("subscription_id") else [MERCHANT_ID])


@pytest.mark.parametrize("source, event", [
    ("billing", order_event("charge_failed", "PED-DDDDRECU", "refused", "credit_card", "sub-ana", "plan_change",
                            decline_reason="insufficient_funds")),
    ("subscriptions", subscription_event(
        "subscription_past_due", cycle_number=2, attempts=1, next_retry_at="2026-06-05T15:00:00+00:00",
        decline_reason="insufficient_funds", amount_cents=123456, order_code="PED-DDDDRECU")),
], ids=["charge_failed", "subscription_past_due"])
def test_the_failed_charge_e_mail_has_a_button_to_the_payment_method_page(
        source, event, sink, owning_services, start_notifications):
    config, _ = start_notifications(sink.smtp_port)
    publish(config["AMQP_URI"], source, event)
    [message] = sink.wait_for_messages(1)
    assert re.search(rf'<a [^>]*href="{re.escape(PAYMENT_PAGE)}"[^>]*>\s*Alterar forma de pagamento', message["html"])


@pytest.mark.parametrize("event, source", SILENT)
def test_an_event_no_buyer_needs_sends_nothing(event, source, sink, owning_services, start_notifications):
    config, container = start_notifications(sink.smtp_port)
    with entrypoint_waiter(container, f"on_{event['type']}", timeout=15):
        publish(config["AMQP_URI"], source, event)
    with ClusterRpcProxy(config, timeout=15) as cluster:
        assert cluster.notifications.list_outbox() == []
    assert sink.messages() == []
    # Nothing to send and no webhook wanting it: not even an inbox row is written.
    engine = make_engine(config["NOTIFICATIONS_DB_URL"])
    try:
        with engine.connect() as connection:
            rows = {table.name: connection.execute(select(func.count()).select_from(table)).scalar_one()
                    for table in Base.metadata.sorted_tables}
        assert not any(rows.values()), rows
    finally:
        engine.dispose()
