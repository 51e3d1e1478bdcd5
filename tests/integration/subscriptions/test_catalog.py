"""Onboarding and the catalog on the broker: `portalctl merchants` and `portalctl
offers` against the subscriptions service, and the catalog's rules as its RPCs keep
them (an offer in use keeps its price and periodicity, is archived and sells no more,
accepts only its merchant's methods; every refusal names its field; pages by cursor)."""
import uuid
from datetime import timedelta

import pytest

from portalctl import cli
from services.common.errors import Conflict, NotFound, RuleRefused, ValidationFailed
from services.subscriptions.domain import add_months
from support.subscriptions_testkit import ANA, NOW, card_for


@pytest.fixture
def portalctl(config, services, monkeypatch, capsys):
    """`portalctl("offers", "list", ...)`: (exit status, output, errors) of portalctl run
    against the services' broker."""
    monkeypatch.setenv("AMQP_URI", config["AMQP_URI"])

    def run(*args):
        capsys.readouterr()
        status = cli.main(list(args))
        printed = capsys.readouterr()
        return status, printed.out, printed.err

    return run


ANA_IDENTITY = {"email": ANA, "merchant_id": None, "session_id": "s"}


def sale(offer_id, merchant_id="loja-nova", method="credit_card"):
    start = NOW - timedelta(days=3)
    payment = card_for(ANA, merchant_id) if method == "credit_card" else {"method": method}
    return {"merchant_id": merchant_id, "external_id": f"sale-{uuid.uuid4().hex[:8]}", "offer_id": offer_id,
            "email": ANA, "status": "active", "cycle_number": 1, "cycle_start": start.isoformat(),
            "cycle_end": add_months(start, 1).isoformat(), "payment": payment}


def test_an_operator_creates_a_merchant_and_two_offers_with_portalctl(portalctl, rpc, event_queue):
    announced = event_queue("subscriptions", "offer_changed")
    assert portalctl("merchants", "create", "--id", "loja-nova", "--name", "Loja Nova",
                     "--payment-method", "credit_card", "--payment-method", "pix")[0] == 0
    for offer_id, price, months in (("mensal", "3990", "1"), ("anual", "39900", "12")):
        status, out, err = portalctl("offers", "create", "--merchant", "loja-nova", offer_id, "--product", "Clube",
                                     "--plan", offer_id, "--price-cents", price, "--periodicity-months", months)
        assert status == 0, err
        assert out.startswith(f"created {offer_id}  active")

    status, listed, _ = portalctl("offers", "list", "--merchant", "loja-nova")
    assert status == 0 and [line.split()[0] for line in listed.splitlines()] == ["anual", "mensal"]
    assert "39900 cents every 12 month(s)" in listed and "credit_card,pix" in listed
    assert "loja-nova  Loja Nova  methods credit_card,pix" in portalctl("merchants", "list")[1]
    assert "name: Loja Nova" in portalctl("merchants", "show", "loja-nova")[1]
    offers = rpc.list_offers("loja-nova")["offers"]
    assert [(o["id"], o["price_cents"], o["periodicity_months"], o["status"]) for o in offers] == [
        ("anual", 39900, 12, "active"), ("mensal", 3990, 1, "active")]

    # Taken ids and broken rules are refused, naming the field.
    status, _, err = portalctl("merchants", "create", "--id", "loja-nova", "--name", "Outra")
    assert status == 1 and "id:" in err
    status, _, err = portalctl("offers", "create", "--merchant", "loja-nova", "trimestral", "--product", "Clube",
                               "--plan", "Trimestral", "--price-cents", "9990", "--periodicity-months", "3",
                               "--accept", "boleto")
    assert status == 1 and "payment_methods_accepted: ['Not allowed for this merchant: boleto.']" in err
    status, _, err = portalctl("offers", "create", "--merchant", "loja-nenhuma", "mensal", "--product", "Clube",
                               "--plan", "Mensal", "--price-cents", "3990", "--periodicity-months", "1")
    assert status == 1 and "merchant_id: ['Unknown merchant.']" in err

    # Unused, an offer's price may change; in use, it is refused naming the field.
    assert portalctl("offers", "update", "--merchant", "loja-nova", "mensal", "--price-cents", "4490")[0] == 0
    rpc.create_subscription(sale("mensal"))
    status, _, err = portalctl("offers", "update", "--merchant", "loja-nova", "mensal", "--price-cents", "4990")
    assert status == 1 and "price_cents: ['An offer with subscriptions keeps its price" in err
    status, out, _ = portalctl("offers", "update", "--merchant", "loja-nova", "mensal", "--status", "archived",
                               "--plan", "Mensal (antigo)")
    assert status == 0 and "mensal  archived Clube / Mensal (antigo)  4490 cents" in out
    assert portalctl("offers", "list", "--merchant", "loja-nova", "--status", "active")[1].split()[0] == "anual"

    # Each change announced once, by the operator; refusals announce nothing.
    changes = [announced.get(timeout=10).payload for _ in range(4)]
    assert [(e["data"]["offer_id"], e["data"]["change"], e["data"]["actor"]) for e in changes] == [
        ("mensal", "created", "operator"), ("anual", "created", "operator"), ("mensal", "updated", "operator"),
        ("mensal", "archived", "operator")]
    assert changes[2]["data"]["changed"] == ["price_cents"] and changes[2]["merchant_id"] == "loja-nova"
    assert changes[3]["data"]["changed"] == ["plan_name", "status"]
    assert announced.qsize() == 0


@pytest.fixture
def shop(rpc):
    rpc.create_merchant({"id": "loja-nova", "name": "Loja Nova", "payment_methods_allowed": ["credit_card", "pix"],
                         "customer_can_change_plan": True, "customer_can_change_payment_method": True})
    rpc.create_merchant({"id": "loja-outra", "name": "Loja Outra"})
    for offer_id, price, months in (("mensal", 3990, 1), ("anual", 39900, 12), ("pix-mensal", 3590, 1)):
        rpc.create_offer("loja-nova", {"id": offer_id, "product_name": "Clube", "plan_name": offer_id,
                                       "price_cents": price, "periodicity_months": months})
    rpc.update_offer("loja-nova", "pix-mensal", {"payment_methods_accepted": ["pix"]})


def field_errors(call, *args):
    with pytest.raises(ValidationFailed) as refused:
        call(*args)
    return refused.value.fields


def test_an_offer_in_use_keeps_its_terms_and_once_archived_takes_no_new_sale(rpc, shop):
    subscription = rpc.create_subscription(sale("anual"))

    assert set(field_errors(rpc.update_offer, "loja-nova", "anual",
                            {"price_cents": 42000, "periodicity_months": 6, "max_installments": 6})) == {
        "price_cents", "periodicity_months"}
    assert rpc.update_offer("loja-nova", "anual", {"price_cents": 39900, "plan_name": "Anual"})["plan_name"] == "Anual"
    archived = rpc.update_offer("loja-nova", "anual", {"status": "archived"})
    assert archived["status"] == "archived" and archived["price_cents"] == 39900

    assert set(field_errors(rpc.create_subscription, sale("anual"))) == {"offer_id"}
    assert rpc.get_subscription(ANA_IDENTITY, subscription["id"])["status"] == "active"  # its subscriptions go on

    # Nor is it a plan-change option any more, though an option still names it.
    monthly = rpc.create_subscription(sale("mensal"))
    rpc.set_plan_change_options("loja-nova", "mensal", {"plan_change_options": ["anual"]})
    assert rpc.plan_options(ANA_IDENTITY, monthly["id"])["options"] == []
    with pytest.raises(RuleRefused) as refused:
        rpc.quote_plan_change(ANA_IDENTITY, monthly["id"], "anual")
    assert refused.value.code == "option_not_offered"
    # An offer accepting pix alone takes no card sale, and the other way round.
    assert field_errors(rpc.create_subscription, sale("pix-mensal")) == {
        "payment.method": ["This offer accepts pix."]}
    on_pix = rpc.create_subscription(sale("pix-mensal", method="pix"))
    assert on_pix["offer_id"] == "pix-mensal"
    # Its buyer may switch only to what it accepts, and the page offers only that.
    assert rpc.get_subscription(ANA_IDENTITY, on_pix["id"])["self_service"]["payment_methods_allowed"] == ["pix"]
    with pytest.raises(RuleRefused) as refused:
        rpc.change_payment_method(ANA_IDENTITY, on_pix["id"], {"method": "credit_card", "card_token": "tok_x"})
    assert refused.value.code == "method_not_allowed"
    assert rpc.get_subscription(ANA_IDENTITY, subscription["id"])["self_service"]["payment_methods_allowed"] == [
        "credit_card", "pix"]


def test_another_merchants_offer_is_not_found_and_lists_come_in_pages(rpc, shop):
    for call, args in ((rpc.update_offer, ("loja-outra", "mensal", {"plan_name": "x"})),
                       (rpc.update_offer, ("loja-outra", "mensal", {"status": "archived"})),
                       (rpc.set_plan_change_options, ("loja-outra", "mensal", {"plan_change_options": []}))):
        with pytest.raises(NotFound):
            call(*args)
    assert rpc.list_offers("loja-outra") == {"offers": [], "next_cursor": None}
    with pytest.raises(Conflict):
        rpc.create_offer("loja-nova", {"id": "mensal", "product_name": "Clube", "plan_name": "m",
                                       "price_cents": 1, "periodicity_months": 1})

    first = rpc.list_offers("loja-nova", limit=2)
    assert [o["id"] for o in first["offers"]] == ["anual", "mensal"] and first["next_cursor"] == "mensal"
    last = rpc.list_offers("loja-nova", cursor=first["next_cursor"], limit=2)
    assert [o["id"] for o in last["offers"]] == ["pix-mensal"] and last["next_cursor"] is None
    assert set(field_errors(rpc.list_offers, "loja-nova", None, 0)) == {"limit"}
    merchants = rpc.list_merchants(limit=1)
    assert [m["id"] for m in merchants["merchants"]] == ["loja-nova"] and merchants["next_cursor"] == "loja-nova"
    assert [m["id"] for m in rpc.list_merchants(cursor="loja-nova")["merchants"]] == ["loja-outra"]
