"""The buyer's whole journey through the portal's pages, as the demo data allows it
(portalctl/demo.py): Ana changes her card and her payment method, upgrades in
installments, schedules a downgrade and a cancellation and undoes both; Bruno, sent
to log in from the page he wanted, pays his past-due subscription now with a new card;
Carla, at Gama Academia (on Asaas), does too, in a form that also asks for the card
holder's CPF, CEP, address number and phone.

The browser tests run it on a desktop and on a 360 px wide phone, each against a
system of its own (the journey changes the demo data).
"""
import re

from support.browser import BuyerBrowser

ANA = "ana@example.com"
BRUNO = "bruno@example.com"
CARLA = "carla@example.com"
TEST_CARD = {"number": "4242 4242 4242 4242", "expiry": "11/31", "security_code": "123"}


def new_buyer_page(chromium, system, folder, viewport, device_scale_factor=1):
    context = chromium.new_context(viewport=viewport, locale="pt-BR", device_scale_factor=device_scale_factor)
    page = context.new_page()
    page.set_default_timeout(15_000)
    return BuyerBrowser(page, system, folder)


def open_subscription(buyer, plan_name):
    buyer.open("/assinaturas")
    buyer.follow(f"Curso Completo — {plan_name}")


def invoice_rows(buyer):
    return [row.inner_text() for row in buyer.page.locator("table tbody tr").all()]


def open_billing_card_form(buyer):
    """Billing's card form, in its frame: the card number never touches the portal."""
    buyer.submit("Informar novo cartão")
    return buyer.page.frame_locator("iframe[title='Formulário do novo cartão de crédito']")


def fill_card(frame, holder_name):
    frame.get_by_label("Número do cartão").fill(TEST_CARD["number"])
    frame.get_by_label("Validade (MM/AA)").fill(TEST_CARD["expiry"])
    frame.get_by_label("CVV").fill(TEST_CARD["security_code"])
    frame.get_by_label("Nome impresso no cartão").fill(holder_name)


def save_card(buyer, frame):
    buyer.check("card-form")
    frame.get_by_role("button", name="Salvar cartão").click()
    frame.get_by_role("heading", name="Cartão salvo").wait_for()
    buyer.check("card-saved")
    with buyer.page.expect_navigation():
        frame.get_by_role("link", name="Voltar à assinatura").click()


def enter_card_in_billing_form(buyer, holder_name):
    frame = open_billing_card_form(buyer)
    fill_card(frame, holder_name)
    save_card(buyer, frame)


def ana_journey(buyer):
    buyer.log_in(ANA)
    assert buyer.page.url.endswith("/pedidos")
    buyer.check("orders")
    assert "E-book Finanças Pessoais" in buyer.page.content()
    buyer.follow("E-book Finanças Pessoais")
    buyer.check("order-detail")
    detail = buyer.page.inner_text("main")
    assert "Aguardando pagamento" in detail and "Linha digitável do boleto" in detail
    assert "Rua Augusta, 1500" in detail and "suporte@acme.example.com" in detail
    assert re.search(r"R\$\s47,00", detail)

    buyer.follow("Assinaturas")
    buyer.check("subscriptions")
    listing = buyer.page.inner_text("main")
    assert "Básico mensal" in listing and "Premium anual" in listing and "Ativas" in listing

    # The monthly Básico: boleto, then a new card through billing's form, then an upgrade in installments.
    buyer.follow("Curso Completo — Básico mensal")
    buyer.check("subscription")
    details = buyer.page.inner_text("main")
    assert "Visa •••• 4242 (validade 08/2030)" in details and "Próxima cobrança" in details
    assert "Histórico de pagamentos" in details and len(invoice_rows(buyer)) == 1

    buyer.follow("Alterar forma de pagamento")
    buyer.check("payment-method")
    buyer.submit("Pagar com boleto")
    assert buyer.notice() == "Forma de pagamento alterada."
    assert "Forma de pagamentoBoleto" in buyer.page.inner_text("main").replace("\n", "").replace("\t", "")
    buyer.check("subscription-boleto")

    buyer.follow("Alterar forma de pagamento")
    enter_card_in_billing_form(buyer, "Ana Souza")
    assert "Visa •••• 4242 (validade 11/2031)" in buyer.page.inner_text("main")
    buyer.check("subscription-new-card")

    buyer.follow("Alterar assinatura")
    buyer.check("plan-options")
    buyer.page.get_by_label(re.compile("^Premium anual")).check()
    buyer.submit("Ver cotação")
    buyer.check("plan-quote")
    quote = buyer.page.inner_text("main")
    assert "Cobrança agora" in quote and "Próxima renovação" in quote and "Quando vale" in quote
    choices = buyer.page.get_by_label("Parcelas").locator("option").all_inner_texts()
    assert choices[0] == "À vista" and choices[-1] == "12x no cartão" and len(choices) == 12
    charge = re.search(r"Confirmar e pagar (R\$\s[\d.,]+)", quote).group(1)
    buyer.page.get_by_label("Parcelas").select_option("12")
    buyer.submit(f"Confirmar e pagar {charge}")
    assert buyer.notice() == "Plano alterado."
    assert buyer.page.get_by_role("heading", level=1).inner_text() == "Curso Completo — Premium anual"
    newest = invoice_rows(buyer)[0]
    assert f"{charge} em 12x" in newest and "Pago" in newest, newest
    buyer.check("subscription-upgraded")

    # The annual Premium: a downgrade scheduled and undone, a cancellation at period end and undone.
    open_subscription(buyer, "Premium anual")
    annual = buyer.page.url
    buyer.follow("Alterar assinatura")
    buyer.page.get_by_label(re.compile("^Básico mensal")).check()
    buyer.submit("Ver cotação")
    assert "Na renovação, em" in buyer.page.inner_text("main")
    assert buyer.page.get_by_label("Parcelas").count() == 0
    buyer.check("plan-quote-downgrade")
    buyer.submit("Confirmar troca")
    assert buyer.notice() == "Troca de plano agendada para a próxima renovação."
    assert "Sua assinatura passa para Básico mensal" in buyer.page.inner_text("main")
    assert buyer.page.get_by_role("link", name="Alterar assinatura").count() == 0
    buyer.check("downgrade-scheduled")
    buyer.submit("Desfazer troca de plano")
    assert buyer.notice() == "Troca de plano desfeita. Seu plano continua o mesmo."
    assert "Troca de plano pendente" not in buyer.page.inner_text("main")

    buyer.follow("Cancelar assinatura")
    buyer.check("cancel")
    assert "Seu acesso continua até" in buyer.page.inner_text("main")
    buyer.page.get_by_label("Por que você está cancelando? (opcional)").select_option("not_using")
    buyer.page.get_by_label("Quer contar mais? (opcional)").fill("Sem tempo agora.")
    buyer.submit("Confirmar cancelamento")
    assert buyer.notice() == "Cancelamento agendado. Você pode desfazê-lo até o fim do ciclo."
    assert buyer.page.get_by_role("link", name="Cancelar assinatura").count() == 0
    buyer.check("cancel-scheduled")
    buyer.submit("Desfazer cancelamento")
    assert buyer.notice() == "Cancelamento desfeito. Sua assinatura continua ativa."
    assert buyer.page.url.startswith(annual)

    buyer.follow("Histórico de atividades")
    buyer.check("activity")
    log = buyer.page.inner_text("main")
    for action in ("Cancelamento desfeito", "Cancelamento agendado", "Troca de plano desfeita", "Troca de plano agendada",
                   "Assinatura criada"):
        assert action in log, action
    assert not re.search(r"\b[a-z]+_[a-z_]+\b", log), log  # every action in the buyer's words

    buyer.follow("Sessões")
    buyer.check("sessions")
    assert "(este navegador)" in buyer.page.inner_text("main")

    buyer.submit("Sair")
    assert buyer.page.get_by_role("heading", level=1).inner_text() == "Acesse suas compras"
    buyer.open("/pedidos")
    assert buyer.page.get_by_role("heading", level=1).inner_text() == "Acesse suas compras"


def bruno_journey(buyer):
    """Sent to log in from the page he wanted, and back to it; "update and pay now"."""
    buyer.open("/assinaturas")
    assert buyer.page.get_by_role("heading", level=1).inner_text() == "Acesse suas compras"
    buyer.log_in(BRUNO)
    assert buyer.page.url.endswith("/assinaturas")
    buyer.check("subscriptions-past-due")

    buyer.follow("Curso Completo — Premium mensal")
    alert = buyer.page.get_by_role("alert").inner_text()
    assert "Pagamento em atraso" in alert
    refused_before = sum("Recusado" in row for row in invoice_rows(buyer))
    buyer.check("subscription-past-due")
    buyer.follow("Atualizar e pagar agora")
    assert "A cobrança em atraso, de R$" in buyer.page.inner_text("main")
    buyer.check("pay-now")
    enter_card_in_billing_form(buyer, "Bruno Lima")
    main = buyer.page.inner_text("main")
    assert "Pagamento em atraso" not in main and "Ativa" in main
    rows = invoice_rows(buyer)
    assert "Pago" in rows[0] and re.search(r"R\$\s59,90", rows[0]), rows
    assert sum("Recusado" in row for row in rows) == refused_before
    buyer.check("paid-now")
    return buyer


def carla_journey(buyer):
    """Carla's Gama plan, past due, paid now with a new card at Gama's Asaas: the form
    asks for the holder too, prefilled from her checkout, and names a wrong CPF."""
    buyer.log_in(CARLA)
    buyer.open("/assinaturas")
    buyer.follow("Academia — Musculação mensal")
    buyer.follow("Atualizar e pagar agora")
    frame = open_billing_card_form(buyer)
    prefilled = {label: frame.get_by_label(label).input_value() for label in (
        "CPF ou CNPJ do titular", "E-mail do titular", "CEP", "Número do endereço", "Telefone com DDD")}
    assert prefilled == {"CPF ou CNPJ do titular": "529.982.247-25", "E-mail do titular": CARLA,
                         "CEP": "89201-600", "Número do endereço": "500", "Telefone com DDD": "+55 47 99123-4567"}
    fill_card(frame, "CARLA DIAS")
    frame.get_by_label("CPF ou CNPJ do titular").fill("529.982.247-52")
    frame.get_by_role("button", name="Salvar cartão").click()
    summary = frame.get_by_role("alert")
    assert "CPF ou CNPJ do titular: CPF ou CNPJ inválido: confira os números." in summary.inner_text()
    buyer.check("card-holder-refused")
    # Typed again: the card's number and CVV never come back; the rest does.
    assert frame.get_by_label("Número do cartão").input_value() == ""
    assert frame.get_by_label("CEP").input_value() == "89201-600"
    fill_card(frame, "CARLA DIAS")
    frame.get_by_label("CPF ou CNPJ do titular").fill("529.982.247-25")
    save_card(buyer, frame)
    main = buyer.page.inner_text("main")
    assert "Pagamento em atraso" not in main and "Ativa" in main
    rows = invoice_rows(buyer)
    assert "Pago" in rows[0] and re.search(r"R\$\s129,90", rows[0]), rows
    return buyer
