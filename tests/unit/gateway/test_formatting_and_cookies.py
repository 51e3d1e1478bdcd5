from datetime import datetime, timezone

from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request, Response

from gateway import cookies, formatting


def test_money_is_brazilian_reais():
    assert formatting.money(123456).replace("\xa0", " ") == "R$ 1.234,56"
    assert formatting.money(2990).replace("\xa0", " ") == "R$ 29,90"
    assert formatting.money(0).replace("\xa0", " ") == "R$ 0,00"


def test_dates_are_shown_in_sao_paulo_time():
    # 02:00 UTC on the 27th is still the 26th in São Paulo (UTC-3).
    assert formatting.date("2026-11-27T02:00:00+00:00") == "26/11/2026"
    assert formatting.date_time(datetime(2026, 11, 26, 15, 30, tzinfo=timezone.utc)) == "26/11/2026 12:30"
    assert formatting.date(None) == ""


def cookie_header(base_url):
    response = Response()
    cookies.set_session_cookie(response, base_url, "secret-token", max_age=60)
    return response.headers["Set-Cookie"]


def test_session_cookie_flags_on_http():
    header = cookie_header("http://localhost:8000")
    assert header.startswith("portal_session=secret-token")
    assert "HttpOnly" in header and "SameSite=Lax" in header and "Path=/" in header
    assert "Secure" not in header


def test_session_cookie_is_host_prefixed_and_secure_on_https():
    header = cookie_header("https://portal.example.com")
    assert header.startswith("__Host-portal_session=secret-token")
    assert "Secure" in header and "Domain" not in header


def request_with(headers):
    return Request(EnvironBuilder(headers=headers).get_environ())


def test_bearer_token_wins_over_the_cookie():
    request = request_with({"Authorization": "Bearer app-token", "Cookie": "portal_session=cookie-token"})
    assert cookies.session_token_from(request, "http://localhost") == "app-token"
    assert cookies.session_token_from(request_with({"Cookie": "portal_session=c"}), "http://localhost") == "c"
    assert cookies.session_token_from(request_with({}), "http://localhost") is None


def test_the_return_path_after_login_is_only_ever_a_portal_path():
    def returned(path):
        request = Request(EnvironBuilder(headers={"Cookie": f"return_to={path}"}).get_environ())
        return cookies.return_path_from(request, "http://localhost:8000")

    assert returned("/assinaturas/abc?aviso=x") == "/assinaturas/abc?aviso=x"
    for foreign in ("//evil.example/", "https://evil.example/", "/\\evil.example", "evil"):
        assert returned(foreign) is None, foreign
