"""Each event a buyer should hear about becomes exactly one e-mail, sent through a real
SMTP server, with the merchant's name, amounts in reais, São Paulo dates and links
into the portal."""
from nameko.standalone.rpc import ClusterRpcProxy

from support.notifications import (
    ANA, BOB, CYCLE_END, CYCLE_START, MERCHANT_ID, PIX_CODE, PORTAL, envelope, identities_seen,
    publish, wait_until,
)

PAYMENT_PAGE = f"{PORTAL}/assinaturas/sub-ana/forma-de-pagamento"


def subscription_event(event_type, subscription_id="sub-ana", email=ANA, **data):
    return envelope(event_type, subscription_id=subscription_id, email=email, actor="buyer", **data)


def order_event(event_type, code, status, method, subscription_id=None, kind=None, **data):
    return envelope(
        event_type, order_id=f"order-{code}", code=code, subscription_id=subscription_id, cycle_number=None,
        kind=kind, idempotency_key=None, amount_cents=123456, status=status, method=method, email=ANA, **data,
    )


# (event, source, recipient, subject, what the text must say)
CASES = [
    (subscription_event(
        "subscription_plan_changed", from_offer_id="python-basico", to_offer_id="python-premium", kind="upgrade",
        charge_cents=61728, balance_cents=0, order_code=None, cycle_number=1,
        cycle_start=CYCLE_START, cycle_end=CYCLE_END,
    ), "subscriptions", ANA, "Seu plano de Curso de Python foi alterado", [
        "agora está no plano Premium", "Valor: R$ 1.234,56 (mensal)", "Cobrado agora: R$ 617,28",
        "Próxima cobrança: 04/06/2026", f"{PORTAL}/assinaturas/sub-ana",
    ]),
    (subscription_event(
        "subscription_plan_change_scheduled", from_offer_id="python-premium", to_offer_id="python-basico",
        takes_effect="cycle_end", effective_at=CYCLE_END, order_code=None,
    ), "subscriptions", ANA, "Troca de plano agendada: Curso de Python", [
        "para o plano Básico foi agendada para 04/06/2026", "Novo valor: R$ 49,90", "desfazer a troca",
    ]),
    (subscription_event(
        "subscription_payment_method_changed", method="credit_card", card_brand="mastercard", card_last4="5454",
        card_exp="12/2030",
    ), "subscriptions", ANA, "Forma de pagamento alterada: Curso de Python", [
        "agora é cartão de crédito Mastercard final 5454",
    ]),
    (subscription_event(
        "subscription_cancellation_scheduled", effective_at=CYCLE_END, feedback=None, comment=None,
    ), "subscriptions", ANA, "Cancelamento agendado: Curso de Python", [
        "Você continua com acesso até 04/06/2026", "desfazer o cancelamento",
    ]),
    (subscription_event(
        "subscription_canceled", reason="non_payment", feedback=None, comment=None, canceled_at=CYCLE_END,
    ), "subscriptions", ANA, "Assinatura cancelada: Curso de Python", [
        "foi cancelada por falta de pagamento",
    ]),
    (subscription_event(
        "subscription_renewed", offer_id="python-premium", cycle_number=2, cycle_start=CYCLE_END,
        cycle_end="2026-07-04T15:00:00+00:00", amount_cents=123456, order_code="PED-EEEERENO",
    ), "subscriptions", ANA, "Recibo: sua assinatura de Curso de Python foi renovada", [
        "Pedido: PED-EEEERENO", "Valor pago: R$ 1.234,56", "cartão de crédito Visa final 4242",
        "Período: 04/06/2026 a 04/07/2026",
    ]),
    (subscription_event(
        "subscription_past_due", cycle_number=2, attempts=1, next_retry_at="2026-06-05T15:00:00+00:00",
        decline_reason="insufficient_funds",
    ), "subscriptions", ANA, "Pagamento pendente: assinatura de Curso de Python", [
        "Vamos tentar cobrar novamente em 05/06/2026", PAYMENT_PAGE,
    ]),
    (order_event("order_paid", "PED-AAAAPAGO", "paid", "credit_card"),
     "billing", ANA, "Pagamento confirmado: pedido PED-AAAAPAGO", [
        "Valor: R$ 1.234,56 em 3x", "Pago em: 04/05/2026", f"{PORTAL}/pedidos/PED-AAAAPAGO",
    ]),
    (order_event("order_created", "PED-BBBBLETO", "pending", "boleto"),
     "billing", ANA, "Seu boleto de R$ 1.234,56: pedido PED-BBBBLETO", [
        "Pague até 07/05/2026", "00190.00009 01234.567890 12345.678901 2 34560000010000",
        f"{PORTAL}/pedidos/PED-BBBBLETO",
    ]),
    (order_event("order_created", "PED-CCCCCPIX", "pending", "pix"),
     "billing", ANA, "Seu pix de R$ 1.234,56: pedido PED-CCCCCPIX", [PIX_CODE]),
    (order_event("charge_failed", "PED-DDDDRECU", "refused", "credit_card", "sub-ana", "renewal",
                 decline_reason="insufficient_funds"),
     "billing", ANA, "Não conseguimos cobrar sua assinatura de Curso de Python", [
        "A cobrança de R$ 1.234,56", "saldo ou limite insuficiente", PAYMENT_PAGE,
    ]),
    # An English-speaking buyer: the subscription says `locale: en`.
    (subscription_event(
        "subscription_canceled", "sub-bob", BOB, reason="buyer", feedback=None, comment=None, canceled_at=CYCLE_END,
    ), "subscriptions", BOB, "Subscription canceled: Python Course", [
        "Your Python Course subscription (Premium plan) has been canceled.",
    ]),
]
# Events no buyer needs an e-mail about (a card order waiting for the processor, the
# payment of a renewal whose receipt `subscription_renewed` sends).
SILENT = [
    (order_event("order_created", "PED-FFFFCARD", "pending_confirmation", "credit_card"), "billing"),
    (order_event("order_paid", "PED-EEEERENO", "paid", "credit_card", "sub-ana", "renewal"), "billing"),
    (subscription_event("subscription_created", external_id="x", offer_id="o", status="active",
                        cycle_end=CYCLE_END), "subscriptions"),
]


def readable(text):
    # Babel separates "R$" from the amount with a no-break space, as it should.
    return (text or "").replace("\xa0", " ")


def test_each_event_becomes_exactly_one_e_mail(sink, owning_services, start_notifications, rabbit_config):
    config, _ = start_notifications(sink.smtp_port)

    for event, source in SILENT:
        publish(config["AMQP_URI"], source, event)
    for event, source, *_ in CASES:
        publish(config["AMQP_URI"], source, event)

    with ClusterRpcProxy(config, timeout=15) as cluster:
        wait_until(lambda: len(cluster.notifications.list_outbox(status="sent")) == len(CASES),
                   message=f"{len(CASES)} e-mails sent")
        rows = cluster.notifications.list_outbox()
    assert len(rows) == len(CASES)
    messages = sink.wait_for_messages(len(CASES))
    assert len(messages) == len(CASES)
    assert len(set(sink.message_ids())) == len(CASES)

    by_subject = {readable(message["subject"]): message for message in messages}
    for event, _source, recipient, subject, sayings in CASES:
        message = by_subject[subject]
        assert message["to"] == [recipient], subject
        assert message["from"] == "Portal do Cliente <portal@example.com>"
        text, html = readable(message["text"]), readable(message["html"])
        for saying in sayings:
            assert saying in text, (subject, saying)
        assert "Acme Cursos" in text and "ajuda@acme.example" in text and "+55 11 4000-1234" in text
        assert subject in html
        assert all(link.startswith((PORTAL, "https://acme.example")) for link in message["links"]), message["links"]
    assert {row["event_id"] for row in rows} == {event["event_id"] for event, *_ in CASES}

    charge_failed = by_subject["Não conseguimos cobrar sua assinatura de Curso de Python"]
    assert f'href="{PAYMENT_PAGE}"' in charge_failed["html"]
    assert "Alterar forma de pagamento" in charge_failed["html"]
    # Enrichment asked as the buyer of the event, scoped to its merchant.
    assert {(identity["email"], identity["merchant_id"], identity["session_id"]) for identity in identities_seen} == {
        (ANA, MERCHANT_ID, "notifications"), (BOB, MERCHANT_ID, "notifications"),
    }

