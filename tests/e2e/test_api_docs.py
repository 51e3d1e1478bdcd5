"""The OpenAPI document and the docs page that renders it, every asset served by the
portal itself (the page works without the internet)."""
import re

import requests

from support.portal_client import TIMEOUT


def test_the_document_is_served_as_json(system):
    answer = requests.get(f"{system.gateway_url}/api/v1/openapi.json", timeout=TIMEOUT)
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("application/json")
    document = answer.json()
    assert document["openapi"].startswith("3.")
    assert document["servers"] == [{"url": system.gateway_url}]
    assert {"/api/v1/auth/login-links", "/api/v1/me/orders", "/api/v1/merchant/orders"} <= set(document["paths"])


def test_the_docs_page_loads_only_files_the_portal_serves(system):
    page = requests.get(f"{system.gateway_url}/api/docs", timeout=TIMEOUT)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert len(assets) == 4
    for asset in assets:
        assert asset.startswith("/"), asset  # no CDN
        served = requests.get(f"{system.gateway_url}{asset}", timeout=TIMEOUT)
        assert served.status_code == 200, asset
        assert served.headers["Content-Type"].split(";")[0] in ("text/css", "text/javascript", "application/javascript")
    assert "/api/v1/openapi.json" in requests.get(f"{system.gateway_url}/static/api-docs.js", timeout=TIMEOUT).text
    missing = requests.get(f"{system.gateway_url}/api/docs/index.html", timeout=TIMEOUT)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
