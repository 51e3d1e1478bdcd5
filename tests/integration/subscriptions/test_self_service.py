"""The buyer's operations and every refusal of issue 4, over a real broker and database,
with billing played by support/subscriptions_testkit.FakeBilling."""
from datetime import datetime, timedelta
from queue import Empty

import pytest

from services.common.errors import Conflict, Forbidden, NotFound, RuleRefused, ValidationFailed
from support.subscriptions_testkit import ANA, BRUNO, NOW, envelopes, identity
from support.waiting import wait_until

ANA_ID = identity(ANA)


def refused(error_class, call, *args, **kwargs):
    with pytest.raises(error_class) as failure:
        call(*args, **kwargs)
    return failure.value


class TestPlanChange:
    def test_options_say_how_each_switch_goes(self, rpc, subscribe):
        subscription = subscribe("acme-premium")
        options = rpc.plan_options(ANA_ID, subscription["id"])
        assert options["current"]["id"] == "acme-premium"
        assert [(option["id"], option["kind"]) for option in options["options"]] == [
            ("acme-basico", "scheduled"), ("acme-anual", "new_cycle")]
        assert options["pending_change"] is None

    def test_quote_then_upgrade_in_installments_up_to_the_months_left(self, rpc, subscribe, ledger, event_queue, db_rows):
        events = event_queue("subscriptions", "subscription_plan_changed")
        # Two months into a six-month cycle: four whole months left.
        subscription = subscribe("acme-semestral", started=datetime(2026, 3, 15, 12) - datetime(2026, 1, 15, 12))
        quote = rpc.quote_plan_change(ANA_ID, subscription["id"], "acme-semestral-plus")
        assert (quote["kind"], quote["takes_effect"], quote["max_installments"]) == ("upgrade", "now", 4)
        # 122 of 181 days left of a 600,00 difference.
        assert quote["charge_cents"] == 40442
        assert datetime.fromisoformat(quote["expires_at"]) == NOW + timedelta(minutes=10)

        above = refused(RuleRefused, rpc.change_plan, ANA_ID, subscription["id"], quote["quote_id"], 5)
        assert above.code == "installments_above_cap" and "4" in above.message
        assert ledger.requests == []

        result = rpc.change_plan(ANA_ID, subscription["id"], quote["quote_id"], 4)

        [charge] = ledger.requests
        assert charge["idempotency_key"] == f"plan_change:{quote['quote_id']}"
        assert (charge["amount_cents"], charge["installments"], charge["kind"], charge["method"]) == (
            40442, 4, "plan_change", "credit_card")
        assert (charge["payment_token"], charge["email"], charge["subscription_id"]) == (
            "tok_ana_visa", ANA, subscription["id"])
        changed = result["subscription"]
        assert (changed["offer_id"], changed["price_cents"], changed["cycle"]) == (
            "acme-semestral-plus", 120000, subscription["cycle"])
        assert result["order"]["status"] == "paid"
        [event] = envelopes(events, 1)
        assert event["data"] == {
            "subscription_id": subscription["id"], "email": ANA, "actor": "buyer",
            "from_offer_id": "acme-semestral", "to_offer_id": "acme-semestral-plus", "kind": "upgrade",
            "charge_cents": 40442, "balance_cents": 0, "order_code": result["order"]["code"],
            "cycle_number": 1, "cycle_start": subscription["cycle"]["start"], "cycle_end": subscription["cycle"]["end"],
        }
        assert db_rows.activity(subscription["id"])[-1] == ("buyer", "plan_changed")
        [entry] = [item for item in rpc.activity(ANA_ID, subscription["id"]) if item["action"] == "plan_changed"]
        assert entry["details"]["charge_cents"] == 40442

        # A confirmed quote is spent.
        again = refused(Conflict, rpc.change_plan, ANA_ID, subscription["id"], quote["quote_id"], 1)
        assert again.code == "quote_expired"

    def test_a_declined_card_leaves_everything_as_it_was(self, rpc, subscribe, ledger, event_queue, db_rows):
        events = event_queue("subscriptions", "#")
        subscription = subscribe("acme-basico")
        quote = rpc.quote_plan_change(ANA_ID, subscription["id"], "acme-premium")
        before = db_rows.subscription(subscription["id"]), db_rows.activity(subscription["id"])
        ledger.card_answer = "refused"

        error = refused(RuleRefused, rpc.change_plan, ANA_ID, subscription["id"], quote["quote_id"], 1)

        assert error.code == "charge_declined"
        assert error.fields == {"decline_reason": ["insufficient_funds"]}
        assert (db_rows.subscription(subscription["id"]), db_rows.activity(subscription["id"])) == before
        assert len(ledger.requests) == 1
        assert [event["type"] for event in envelopes(events, 1)] == ["subscription_created"]
        with pytest.raises(Empty):
            events.get(timeout=1)

    def test_a_downgrade_waits_for_the_cycle_end_and_can_be_undone(self, rpc, subscribe, ledger, event_queue):
        events = event_queue("subscriptions", "subscription_plan_change_scheduled", "subscription_plan_change_dropped")
        subscription = subscribe("acme-premium")
        quote = rpc.quote_plan_change(ANA_ID, subscription["id"], "acme-basico")
        assert (quote["kind"], quote["charge_cents"], quote["effective_at"]) == (
            "scheduled", 0, subscription["cycle"]["end"])

        result = rpc.change_plan(ANA_ID, subscription["id"], quote["quote_id"], 1)
        assert ledger.requests == [] and result["order"] is None
        pending = result["subscription"]["pending_plan_change"]
        assert (pending["offer"]["id"], pending["status"], pending["effective_at"]) == (
            "acme-basico", "scheduled", subscription["cycle"]["end"])
        assert result["subscription"]["offer_id"] == "acme-premium"
        other = refused(RuleRefused, rpc.quote_plan_change, ANA_ID, subscription["id"], "acme-anual")
        assert other.code == "change_already_pending"

        undone = rpc.undo_plan_change(ANA_ID, subscription["id"])
        assert undone["subscription"]["pending_plan_change"] is None
        assert refused(RuleRefused, rpc.undo_plan_change, ANA_ID, subscription["id"]).code == "no_pending_change"
        scheduled, dropped = envelopes(events, 2)
        assert (scheduled["type"], scheduled["data"]["takes_effect"]) == ("subscription_plan_change_scheduled", "cycle_end")
        assert (dropped["type"], dropped["data"]["why"], dropped["data"]["actor"]) == (
            "subscription_plan_change_dropped", "undone", "buyer")
        assert [item["action"] for item in rpc.activity(ANA_ID, subscription["id"])][:2] == [
            "plan_change_dropped", "plan_change_scheduled"]

    def test_a_pix_upgrade_takes_effect_when_billing_reports_it_paid(self, rpc, subscribe, ledger, billing_event, db_rows):
        subscription = subscribe("acme-basico", payment={"method": "pix"})
        quote = rpc.quote_plan_change(ANA_ID, subscription["id"], "acme-premium")
        assert (quote["takes_effect"], quote["max_installments"]) == ("on_payment", 1)

        result = rpc.change_plan(ANA_ID, subscription["id"], quote["quote_id"], 1)
        assert (result["order"]["status"], result["order"]["payment"]["pix_code"]) == ("pending", "00020126pix-code")
        assert result["subscription"]["offer_id"] == "acme-basico"
        assert result["subscription"]["pending_plan_change"]["status"] == "awaiting_payment"
        assert refused(RuleRefused, rpc.undo_plan_change, ANA_ID, subscription["id"]).code == "change_awaiting_payment"

        order = ledger.orders[f"plan_change:{quote['quote_id']}"]
        event_id = billing_event("order_paid", order)
        wait_until(lambda: rpc.get_subscription(ANA_ID, subscription["id"])["offer_id"] == "acme-premium")
        # The same event again (at-least-once delivery), and another report of the same
        # payment, change nothing more.
        billing_event("order_paid", order, event_id=event_id)
        billing_event("order_paid", order)
        wait_until(lambda: db_rows.inbox_size() == 2)
        detail = rpc.get_subscription(ANA_ID, subscription["id"])
        assert detail["pending_plan_change"] is None
        assert [action for _, action in db_rows.activity(subscription["id"])].count("plan_changed") == 1

    def test_a_failed_pix_or_unknown_card_charge_drops_the_awaited_change(self, rpc, subscribe, ledger, billing_event):
        ledger.card_answer = "pending_confirmation"
        subscription = subscribe("acme-basico")
        quote = rpc.quote_plan_change(ANA_ID, subscription["id"], "acme-premium")
        result = rpc.change_plan(ANA_ID, subscription["id"], quote["quote_id"], 1)
        assert result["subscription"]["pending_plan_change"]["status"] == "awaiting_payment"

        billing_event("charge_failed", ledger.orders[f"plan_change:{quote['quote_id']}"])
        wait_until(lambda: rpc.get_subscription(ANA_ID, subscription["id"])["pending_plan_change"] is None)
        assert rpc.get_subscription(ANA_ID, subscription["id"])["offer_id"] == "acme-basico"

class TestPaymentMethod:
    def test_a_card_from_card_entry(self, rpc, subscribe, ledger, event_queue):
        events = event_queue("subscriptions", "subscription_payment_method_changed")
        subscription = subscribe("acme-basico", payment={"method": "boleto"})
        ledger.cards["tok_new"] = {"email": ANA, "merchant_id": "acme-cursos", "brand": "mastercard",
                                   "last4": "5454", "exp": "03/2031"}

        unknown = refused(ValidationFailed, rpc.change_payment_method, ANA_ID, subscription["id"],
                          {"method": "credit_card", "card_token": "tok_someone_elses"})
        assert unknown.code == "unknown_card_token"

        result = rpc.change_payment_method(ANA_ID, subscription["id"], {"method": "credit_card", "card_token": "tok_new"})
        assert result["subscription"]["payment_method"] == {
            "method": "credit_card", "card_brand": "mastercard", "card_last4": "5454", "card_exp": "03/2031"}
        assert result["order"] is None and ledger.requests == []
        [event] = envelopes(events, 1)
        assert event["data"] == {"subscription_id": subscription["id"], "email": ANA, "actor": "buyer",
                                 "method": "credit_card", "card_brand": "mastercard", "card_last4": "5454",
                                 "card_exp": "03/2031"}
        assert "tok_new" not in repr(event) and "tok_new" not in repr(result)

        to_pix = rpc.change_payment_method(ANA_ID, subscription["id"], {"method": "pix"})
        assert to_pix["subscription"]["payment_method"] == {
            "method": "pix", "card_brand": None, "card_last4": None, "card_exp": None}

    def test_card_entry_ticket_comes_from_billing_for_this_subscription(self, rpc, subscribe, ledger):
        subscription = subscribe("acme-basico")
        ticket = rpc.begin_card_update(ANA_ID, subscription["id"])
        assert ticket["form_url"].startswith("http://billing.test/card?ticket=")
        assert ledger.tickets == [
            {"email": ANA, "merchant_id": "acme-cursos", "subscription_id": subscription["id"], "holder": None}]

class TestCancel:
    def test_at_period_end_with_a_reason_then_undo(self, rpc, subscribe, event_queue, set_clock):
        events = event_queue("subscriptions", "subscription_cancellation_scheduled", "subscription_cancellation_undone")
        subscription = subscribe("acme-basico")
        result = rpc.cancel(ANA_ID, subscription["id"], {"reason": "too_expensive", "comment": "Caro demais."})
        canceled = result["subscription"]
        assert (canceled["status"], canceled["cancel_at_period_end"], canceled["next_charge_at"]) == ("active", True, None)
        assert (canceled["cancel_feedback"], canceled["cancel_comment"]) == ("too_expensive", "Caro demais.")
        again = refused(RuleRefused, rpc.cancel, ANA_ID, subscription["id"], {})
        assert again.code == "cancellation_already_scheduled"

        undone = rpc.undo_cancel(ANA_ID, subscription["id"])["subscription"]
        assert (undone["cancel_at_period_end"], undone["next_charge_at"]) == (False, subscription["cycle"]["end"])
        scheduled, undo = envelopes(events, 2)
        assert scheduled["data"] == {"subscription_id": subscription["id"], "email": ANA, "actor": "buyer",
                                     "effective_at": subscription["cycle"]["end"], "feedback": "too_expensive",
                                     "comment": "Caro demais."}
        assert undo["type"] == "subscription_cancellation_undone"

        rpc.cancel(ANA_ID, subscription["id"], {"reason": "other"})
        set_clock(datetime.fromisoformat(subscription["cycle"]["end"]))
        assert refused(RuleRefused, rpc.undo_cancel, ANA_ID, subscription["id"]).code == "period_ended"

    def test_an_unknown_reason_is_invalid(self, rpc, subscribe):
        subscription = subscribe("acme-basico")
        error = refused(ValidationFailed, rpc.cancel, ANA_ID, subscription["id"], {"reason": "bored"})
        assert set(error.fields) == {"reason"}


class TestEveryOperationIsTheServicesToRefuse:
    def operations(self, rpc, subscription_id, buyer):
        return [
            (rpc.plan_options, (buyer, subscription_id)),
            (rpc.quote_plan_change, (buyer, subscription_id, "beta-max")),
            (rpc.change_plan, (buyer, subscription_id, "00000000-0000-4000-8000-000000000000", 1)),
            (rpc.undo_plan_change, (buyer, subscription_id)),
            (rpc.change_payment_method, (buyer, subscription_id, {"method": "credit_card", "card_token": "tok"})),
            (rpc.begin_card_update, (buyer, subscription_id)),
            (rpc.cancel, (buyer, subscription_id, {"reason": "other"})),
            (rpc.undo_cancel, (buyer, subscription_id)),
        ]

    def test_a_setting_that_is_off_refuses_with_operation_disabled(self, rpc, subscribe, ledger):
        subscription = subscribe("beta-pro", merchant_id="beta-software", email=BRUNO)
        for call, args in self.operations(rpc, subscription["id"], identity(BRUNO)):
            error = refused(Forbidden, call, *args)
            assert error.code == "operation_disabled", call
        assert ledger.requests == [] and ledger.tickets == []
        assert rpc.activity(identity(BRUNO), subscription["id"])[0]["action"] == "subscription_created"

    def test_another_buyers_subscription_is_not_found(self, rpc, subscribe, ledger):
        subscription = subscribe("acme-basico")
        bruno = identity(BRUNO)
        for call, args in self.operations(rpc, subscription["id"], bruno) + [(rpc.activity, (bruno, subscription["id"]))]:
            refused(NotFound, call, *args)
        # A session scoped to another merchant does not see it either.
        refused(NotFound, rpc.plan_options, identity(ANA, merchant_id="beta-software"), subscription["id"])
        assert rpc.plan_options(identity(ANA, merchant_id="acme-cursos"), subscription["id"])["options"]
        assert ledger.requests == []
