"""Merchants on Asaas in billing under test, through devtools' fake Asaas."""
GAMA_KEY = "$aact_hmlg_000MzkwODA2MWY2OGM3MWRlMDU2NWM3MzJlNzZmNGZhZGY6OmdhbWEtYWNhZGVtaWE"
ACME_KEY = "$aact_hmlg_000MzkwODA2MWY2OGM3MWRlMDU2NWM3MzJlNzZmNGZhZGY6OmFjbWUtY3Vyc29z"


def asaas_overrides(fake_asaas, web_config):
    """Billing's config for accounts on the fake Asaas (`billing_overrides`)."""
    return {"ASAAS_SANDBOX_URL": fake_asaas.url, "ASAAS_TIMEOUT_SECONDS": 2,
            "BILLING_PUBLIC_URL": f"http://{web_config['WEB_SERVER_ADDRESS']}"}


def put_asaas_account(billing, merchant_id, api_key):
    """`merchant_id` on the Asaas account of `api_key` (its webhook token given, so none is registered)."""
    return billing.rpc.set_processor_account({
        "merchant_id": merchant_id, "processor": "asaas", "environment": "sandbox", "api_key": api_key,
        "webhook_token": "Zy" * 20, "notify": [f"dona@{merchant_id}.example.com"],
    })
