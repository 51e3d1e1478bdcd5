"""Gama Academia, the demo merchant on Asaas, through `make run` as a newcomer walks
it: devtools' fake Asaas stands in for Asaas, and billing talks to it only through
the Asaas adapter and Asaas's webhook."""
import requests

from portalctl.demo import CARLA, GAMA_ASAAS_KEY
from support.portal_client import TIMEOUT, log_in
from support.waiting import wait_until

ASAAS_HEADERS = {"access_token": GAMA_ASAAS_KEY, "User-Agent": "e2e-test"}


def test_carla_pays_her_past_due_gama_plan_by_pix_issued_and_settled_through_asaas(system):
    carla = log_in(system, CARLA)[0]
    [subscription] = carla.get(f"{system.gateway_url}/api/v1/me/subscriptions", timeout=TIMEOUT).json()["subscriptions"]
    assert (subscription["merchant"]["id"], subscription["status"]) == ("gama-academia", "past_due")

    # "Atualizar e pagar agora": the past-due cycle is charged at once, by pix, at Asaas.
    base = f"{system.gateway_url}/api/v1/me/subscriptions/{subscription['id']}"
    changed = carla.post(f"{base}/payment-method", json={"method": "pix"}, timeout=TIMEOUT)
    assert changed.status_code == 200, changed.text
    asaas = f"http://127.0.0.1:{system.fake_asaas_port}/v3"
    [payment] = requests.get(f"{asaas}/payments", headers=ASAAS_HEADERS, timeout=TIMEOUT).json()["data"]
    assert (payment["billingType"], payment["status"], payment["value"]) == ("PIX", "PENDING", 129.9)
    [customer] = requests.get(f"{asaas}/customers", headers=ASAAS_HEADERS, timeout=TIMEOUT).json()["data"]
    assert (customer["id"], customer["cpfCnpj"]) == (payment["customer"], "52998224725")

    def the_order(status):
        orders = carla.get(f"{system.gateway_url}/api/v1/me/orders", timeout=TIMEOUT).json()["orders"]
        return next((order for order in orders if order["status"] == status
                     and order["payment"]["method"] == "pix" and order["cycle_number"] == 2
                     and order["payment"].get("pix_code", "").startswith("000201")
                     and "FAKE ASAAS" in order["payment"]["pix_code"]), None)

    issued = the_order("pending")
    assert issued is not None

    # She pays it; Asaas tells billing by webhook, billing asks Asaas, the plan renews.
    paid = requests.post(f"{asaas}/sandbox/payment/{payment['id']}/confirm", headers=ASAAS_HEADERS, timeout=TIMEOUT)
    assert paid.status_code == 200, paid.text
    assert wait_until(lambda: the_order("paid"), message="the pix order paid")["code"] == issued["code"]
    wait_until(lambda: carla.get(base, timeout=TIMEOUT).json()["subscription"]["status"] == "active",
               message="the plan renewed")
