"""A login e-mail only ever links to the portal (PORTAL_BASE_URL): whoever can reach
notifications cannot have it send a genuine-looking e-mail with a link of theirs."""
import pytest

from services.common.errors import ValidationFailed
from services.common.validation import load
from services.notifications.schemas import SendLoginEmailSchema

COMMAND = {"email": "ana@example.com", "code": "042917", "expires_at": "2026-05-04T12:10:00+00:00"}


def sent_with(link, base="https://portal.example.com:8443/cliente"):
    return load(SendLoginEmailSchema(base), {**COMMAND, "link": link})["link"]


@pytest.mark.parametrize("link", [
    "https://portal.example.com:8443/cliente/entrar?token=abc",
    "https://PORTAL.example.com:8443/cliente/entrar#x",
    "https://portal.example.com:8443/cliente",
])
def test_a_link_on_the_portal_is_accepted(link):
    assert sent_with(link) == link


@pytest.mark.parametrize("link", [
    "https://evil.example.net/cliente/entrar?token=abc",  # another host
    "http://portal.example.com:8443/cliente/entrar",  # another scheme
    "https://portal.example.com/cliente/entrar",  # another port
    "https://portal.example.com:8443/outra/entrar",  # outside the base path
    "https://portal.example.com:8443/clientex/entrar",  # only a prefix of the base path
    "https://portal.example.com:8443/cliente/../admin",  # resolved out of it
    "https://portal.example.com:8443/cliente/%2E%2E/admin",
    "https://user:pw@portal.example.com:8443/cliente/entrar",  # credentials in the link
    "https://portal.example.com:8443@evil.example.net/cliente/entrar",
])
def test_a_link_elsewhere_is_refused_naming_the_field_without_echoing_it(link):
    with pytest.raises(ValidationFailed) as refused:
        sent_with(link)

    assert set(refused.value.fields) == {"link"}
    assert link not in str(refused.value.to_dict())


def test_the_default_ports_are_the_same_origin_written_or_not():
    assert sent_with("https://portal.example.com:443/entrar", base="https://portal.example.com") \
        == "https://portal.example.com:443/entrar"
