"""What devtools' fake Asaas checks of a card's tokenization, as Asaas documents it: the
buyer's IP in `remoteIp`, a customer of the key's own account."""
import requests

from support.asaas_accounts import ACME_KEY, GAMA_KEY

HEADERS = {"User-Agent": "test"}
CARD = {"holderName": "CARLA DIAS", "number": "4242424242424242", "expiryMonth": "05", "expiryYear": "2035",
        "ccv": "123"}
HOLDER = {"name": "Carla Dias", "email": "carla@example.com", "cpfCnpj": "52998224725", "postalCode": "01310200",
          "addressNumber": "1578", "phone": "11987654321"}


def call(fake_asaas, method, path, key, body=None):
    return requests.request(method, f"{fake_asaas.url}{path}", json=body, timeout=10,
                            headers={**HEADERS, "access_token": key})


def test_tokenization_needs_the_buyers_ip_and_a_customer_is_seen_by_its_own_account_only(fake_asaas):
    customer = call(fake_asaas, "POST", "/customers", GAMA_KEY, {"name": "Carla Dias", "cpfCnpj": "52998224725"}).json()
    tokenize = {"customer": customer["id"], "creditCard": CARD, "creditCardHolderInfo": HOLDER}

    missing = call(fake_asaas, "POST", "/creditCard/tokenizeCreditCard", GAMA_KEY, tokenize)
    not_an_ip = call(fake_asaas, "POST", "/creditCard/tokenizeCreditCard", GAMA_KEY,
                     {**tokenize, "remoteIp": "the buyer"})
    tokenized = call(fake_asaas, "POST", "/creditCard/tokenizeCreditCard", GAMA_KEY,
                     {**tokenize, "remoteIp": "2001:db8::7"})

    assert missing.status_code == 400 and "remoteIp" in missing.json()["errors"][0]["description"]
    assert not_an_ip.status_code == 400 and not_an_ip.json()["errors"][0]["code"] == "invalid_remoteIp"
    assert tokenized.status_code == 200 and tokenized.json()["creditCardNumber"] == "4242"
    assert call(fake_asaas, "GET", f"/customers/{customer['id']}", GAMA_KEY).json()["id"] == customer["id"]
    assert call(fake_asaas, "GET", f"/customers/{customer['id']}", ACME_KEY).status_code == 404
