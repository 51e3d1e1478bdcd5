"""Where webhooks may go: the address rules, URL checks at save time and the ports the
development setting keeps refusing. The requests themselves:
tests/integration/notifications/test_outbound_session.py."""
import ipaddress

import pytest

from services.common.config import load_config
from services.notifications.outbound import (
    Destinations, DestinationRefused, ip_literal, is_local, is_public, portal_ports,
)
from support.notifications import Dns

PORTAL_PORTS = frozenset({8000, 8001, 8025, 1025})
# Nothing here connects anywhere: the global addresses below are only answers to check.
PRODUCTION = Destinations(portal_ports=PORTAL_PORTS, resolver=Dns({
    "hooks.acme.example": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
    "internal.acme.example": ["10.1.2.3"],
    "half-internal.acme.example": ["93.184.215.14", "127.0.0.1"],
    "metadata.acme.example": ["169.254.169.254"],
}))
DEVELOPMENT = Destinations(allow_local=True, portal_ports=PORTAL_PORTS, resolver=Dns({
    "localhost": ["127.0.0.1", "::1"], "receiver.test": ["127.0.0.1"], "metadata.test": ["169.254.169.254"],
    "hooks.acme.example": ["93.184.215.14"],
}))


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.8.9.10", "10.0.0.5", "172.16.0.1", "192.168.1.1", "169.254.169.254", "0.0.0.0",
    "100.64.0.1", "224.0.0.1", "224.0.1.1", "240.0.0.1", "255.255.255.255", "192.0.2.1", "198.18.0.1",
    "::1", "::", "fc00::1", "fd12:3456::1", "fe80::1", "fe80::1%eth0", "ff02::1", "ff0e::1",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::7f00:1", "64:ff9b::7f00:1",
    "2002:7f00:1::1", "2001:db8::1",
])
def test_addresses_that_are_not_global_unicast_are_not_public(address):
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"])
def test_global_unicast_addresses_are_public(address):
    assert is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address, local", [
    ("127.0.0.1", True), ("10.0.0.5", True), ("192.168.1.1", True), ("::1", True), ("fd12::1", True),
    ("::ffff:127.0.0.1", True),
    # Never, even in development: cloud metadata, "any address", multicast.
    ("169.254.169.254", False), ("fe80::1", False), ("0.0.0.0", False), ("::", False), ("224.0.0.1", False),
])
def test_the_development_setting_lets_loopback_and_private_addresses_only(address, local):
    assert is_local(ipaddress.ip_address(address)) is local


@pytest.mark.parametrize("host", ["2130706433", "0x7f000001", "0x7f.1", "127.1", "0177.0.0.1", "017700000001"])
def test_every_spelling_the_c_library_reads_as_an_ipv4_address_is_that_address(host):
    assert ip_literal(host) == ipaddress.ip_address("127.0.0.1")


@pytest.mark.parametrize("host", ["hooks.acme.example", "0x7f.example", "deadbeef", "localhost"])
def test_a_name_is_no_address(host):
    assert ip_literal(host) is None


@pytest.mark.parametrize("url, refusal", [
    ("http://127.0.0.1:8001/sandbox/orders/PED-AAAABBBB/pay", "address not allowed: 127.0.0.1"),
    ("http://127.0.0.1:9999/hooks", "address not allowed: 127.0.0.1"),
    ("http://169.254.169.254/latest/meta-data/", "address not allowed: 169.254.169.254"),
    ("http://10.0.0.5:8080/hooks", "address not allowed: 10.0.0.5"),
    ("http://192.168.0.10/hooks", "address not allowed: 192.168.0.10"),
    ("http://0.0.0.0:8001/hooks", "address not allowed: 0.0.0.0"),
    ("http://224.0.0.1/hooks", "address not allowed: 224.0.0.1"),
    ("http://[::1]:8001/hooks", "address not allowed: ::1"),
    ("http://[fc00::1]/hooks", "address not allowed: fc00::1"),
    ("http://[fe80::1]/hooks", "address not allowed: fe80::1"),
    ("http://[::ffff:127.0.0.1]:8001/hooks", "address not allowed: ::ffff:7f00:1"),
    ("http://2130706433:8001/hooks", "address not allowed: 127.0.0.1"),
    ("http://0x7f.1:8001/hooks", "address not allowed: 127.0.0.1"),
    ("http://localhost:9999/hooks", "address not allowed: localhost"),
    ("http://LOCALHOST./hooks", "address not allowed: localhost."),
    ("http://api.localhost/hooks", "address not allowed: api.localhost"),
    ("https://internal.acme.example/hooks", "address not allowed: internal.acme.example resolves to 10.1.2.3"),
    ("https://half-internal.acme.example/hooks",
     "address not allowed: half-internal.acme.example resolves to 127.0.0.1"),
    ("https://metadata.acme.example/", "address not allowed: metadata.acme.example resolves to 169.254.169.254"),
    ("https://user:s3cret@hooks.acme.example/hooks", "credentials in the URL are not allowed"),
    ("https://token@hooks.acme.example/hooks", "credentials in the URL are not allowed"),
])
def test_a_url_that_could_reach_the_portals_network_is_refused_when_saved(url, refusal):
    with pytest.raises(DestinationRefused) as refused:
        PRODUCTION.check_url(url)

    assert str(refused.value) == refusal
    assert "s3cret" not in str(refused.value)


@pytest.mark.parametrize("url", [
    "https://hooks.acme.example/portal", "http://hooks.acme.example:8001/portal", "https://8.8.8.8/hooks",
    "https://[2606:4700::1111]/hooks",
    # Does not resolve now: each POST checks it again.
    "https://not-yet.acme.example/hooks",
])
def test_a_url_of_a_global_address_or_a_name_not_resolving_yet_is_accepted(url):
    PRODUCTION.check_url(url)


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:9999/hooks", "http://localhost:9999/hooks", "http://receiver.test:9999/hooks",
    "http://10.0.0.5:8080/hooks", "http://[::1]:9999/hooks", "https://hooks.acme.example:8001/portal",
])
def test_in_development_a_receiver_on_this_machine_or_network_is_accepted(url):
    DEVELOPMENT.check_url(url)


@pytest.mark.parametrize("url, refusal", [
    ("http://127.0.0.1:8001/sandbox/orders/PED-AAAABBBB/pay",
     "address not allowed: 127.0.0.1, port 8001 is the portal's own"),
    ("http://localhost:8000/api/v1/me", "address not allowed: localhost resolves to 127.0.0.1, port 8000 is the portal's own"),
    ("http://receiver.test:8025/", "address not allowed: receiver.test resolves to 127.0.0.1, port 8025 is the portal's own"),
    ("http://[::1]:1025/", "address not allowed: ::1, port 1025 is the portal's own"),
    ("http://10.0.0.5:8001/", "address not allowed: 10.0.0.5, port 8001 is the portal's own"),
    ("http://169.254.169.254/latest/meta-data/", "address not allowed: 169.254.169.254"),
    ("http://metadata.test/", "address not allowed: metadata.test resolves to 169.254.169.254"),
    ("http://0.0.0.0:9999/", "address not allowed: 0.0.0.0"),
    ("http://user:pass@127.0.0.1:9999/", "credentials in the URL are not allowed"),
])
def test_in_development_the_portals_own_ports_metadata_and_credentials_stay_refused(url, refusal):
    with pytest.raises(DestinationRefused) as refused:
        DEVELOPMENT.check_url(url)

    assert str(refused.value) == refusal


def test_the_portals_own_ports_are_every_port_its_configuration_names(monkeypatch):
    monkeypatch.setenv("GATEWAY_PORT", "18000")
    monkeypatch.setenv("BILLING_PORT", "18001")
    monkeypatch.setenv("MAIL_SINK_PORT", "18025")
    monkeypatch.setenv("SMTP_PORT", "11025")
    monkeypatch.setenv("METRICS_PORT", "19100")
    monkeypatch.setenv("WEB_SERVER_ADDRESS", "0.0.0.0:18080")
    monkeypatch.setenv("AMQP_URI", "amqp://guest:guest@localhost:15673/")
    monkeypatch.setenv("BILLING_PUBLIC_URL", "http://localhost:18443")

    ports = portal_ports(load_config())

    assert {18000, 18001, 18025, 11025, 19100, 18080, 15673, 18443} <= ports


def test_metrics_off_is_no_port_and_the_setting_is_off_unless_turned_on(monkeypatch):
    monkeypatch.setenv("METRICS_PORT", "0")
    monkeypatch.delenv("WEBHOOK_ALLOW_PRIVATE_ADDRESSES", raising=False)
    assert 0 not in portal_ports(load_config())
    assert Destinations.from_config(load_config()).allow_local is False

    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE_ADDRESSES", "true")
    assert Destinations.from_config(load_config()).allow_local is True
