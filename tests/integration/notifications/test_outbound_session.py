"""Requests through `outbound.session` to real local receivers: the name resolved once
and the connection made to the address checked (Host header, SNI and certificate
still the name's), refusals before anything is sent, no redirect followed, no proxy
taken from the environment."""
import ssl
import subprocess
import sys

import pytest
import requests

from services.common.config import REPO_ROOT
from services.notifications import outbound
from services.notifications.outbound import Destinations, DestinationRefused, NameNotResolved
from support.notifications import Dns


def development(dns, *portal_ports):
    return Destinations(allow_local=True, portal_ports=frozenset(portal_ports), resolver=dns)


def post(destinations, url, **options):
    with outbound.session(destinations) as session:
        return session.post(url, data=b"{}", timeout=5, **options)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    """`certificates(name)`: (certificate, key) files of a self-signed certificate for `name`."""
    folder = tmp_path_factory.mktemp("tls")

    def make(name):
        certificate, key = folder / f"{name}.crt", folder / f"{name}.key"
        subprocess.run([
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(key), "-out", str(certificate), "-days", "2", "-subj", f"/CN={name}",
            "-addext", f"subjectAltName=DNS:{name}",
        ], check=True, capture_output=True)
        return certificate, key

    return make


def tls_server(certificate, key, names_seen):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, key)
    context.sni_callback = lambda _socket, name, _context: names_seen.append(name)
    return context


def test_a_name_is_resolved_once_and_the_connection_goes_to_the_address_checked(receiver):
    endpoint = receiver(200)
    dns = Dns({"hooks.merchant.test": ["127.0.0.1"]})

    def rebinding(host, port):
        try:
            return dns(host, port)
        finally:  # from the first answer on, the name points where nothing listens
            dns.names[host] = ["127.0.0.2"]

    answer = post(development(rebinding), f"http://hooks.merchant.test:{endpoint.port}/hooks/portal")

    assert answer.status_code == 200
    assert dns.asked == ["hooks.merchant.test"]
    [request] = endpoint.requests
    assert request["headers"]["Host"] == f"hooks.merchant.test:{endpoint.port}"
    assert request["path"] == "/hooks/portal"


def test_over_tls_the_name_goes_in_sni_and_the_certificate_is_checked_against_it(receiver, certificates):
    names_seen = []
    trusted, key = certificates("hooks.merchant.test")
    endpoint = receiver(200, tls=tls_server(trusted, key, names_seen))

    right = post_over_tls(f"https://hooks.merchant.test:{endpoint.port}/hooks/portal", trusted)
    wrong = post_over_tls(f"https://other.merchant.test:{endpoint.port}/hooks/portal", trusted)

    assert right == "200"
    assert wrong == "SSLError"
    assert names_seen == ["hooks.merchant.test", "other.merchant.test"]
    [request] = endpoint.requests
    assert request["headers"]["Host"] == f"hooks.merchant.test:{endpoint.port}"


# requests cannot make TLS connections in this test process, where urllib3 was imported
# before eventlet's monkey patching: the client runs as the services do, patched first.
TLS_CLIENT = """
import sys, eventlet
eventlet.monkey_patch()
import requests
from services.notifications import outbound
url, trusted = sys.argv[1:]
destinations = outbound.Destinations(allow_local=True, resolver=lambda host, port: ["127.0.0.1"])
try:
    with outbound.session(destinations) as session:
        print(session.post(url, data=b"{}", timeout=5, verify=trusted).status_code)
except requests.RequestException as error:
    print(type(error).__name__)
"""


def post_over_tls(url, trusted):
    """What the client above printed: the status code, or the error's class."""
    finished = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", TLS_CLIENT, url, str(trusted)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=30,
    )
    assert finished.returncode == 0, finished.stderr
    return finished.stdout.strip()


@pytest.mark.parametrize("addresses, refused_address", [
    (["127.0.0.1"], "127.0.0.1"),
    # Nothing connects to the global address: one address refused refuses the name.
    (["93.184.215.14", "127.0.0.1"], "127.0.0.1"),
    (["::ffff:127.0.0.1"], "::ffff:7f00:1"),
])
def test_a_name_with_any_address_on_this_machine_is_refused_before_anything_is_sent(
        receiver, addresses, refused_address):
    endpoint = receiver(200)
    dns = Dns({"hooks.merchant.test": addresses})

    with pytest.raises(DestinationRefused) as refused:
        post(Destinations(resolver=dns), f"http://hooks.merchant.test:{endpoint.port}/hooks/portal")

    assert str(refused.value) == f"address not allowed: hooks.merchant.test resolves to {refused_address}"
    assert endpoint.requests == []


def test_a_name_that_does_not_resolve_is_a_connection_error_worth_retrying():
    with pytest.raises(NameNotResolved) as unresolved:
        post(Destinations(resolver=Dns({})), "https://not-yet.merchant.test/hooks")

    assert isinstance(unresolved.value, requests.ConnectionError)
    assert str(unresolved.value).startswith("not-yet.merchant.test does not resolve")


def test_in_development_a_port_of_the_portal_is_refused_and_another_is_reached(receiver):
    portal, elsewhere = receiver(200), receiver(200)
    destinations = development(Dns({}), portal.port)

    with pytest.raises(DestinationRefused) as refused:
        post(destinations, portal.url)
    answer = post(destinations, elsewhere.url)

    assert str(refused.value) == f"address not allowed: 127.0.0.1, port {portal.port} is the portal's own"
    assert portal.requests == []
    assert answer.status_code == 200 and len(elsewhere.requests) == 1


def test_credentials_in_the_url_are_refused_and_never_sent(receiver):
    endpoint = receiver(200)
    url = endpoint.url.replace("http://", "http://merchant:s3cret@")

    with pytest.raises(DestinationRefused) as refused:
        post(development(Dns({})), url)

    assert str(refused.value) == "credentials in the URL are not allowed"
    assert endpoint.requests == []


def test_a_redirect_is_never_followed_even_when_asked(receiver):
    inside = receiver(200)
    redirecting = receiver(302, headers=[("Location", f"http://127.0.0.1:{inside.port}/sandbox/orders/X/pay")])
    dns = Dns({"hooks.merchant.test": ["127.0.0.1"]})

    answer = post(development(dns), f"http://hooks.merchant.test:{redirecting.port}/hooks", allow_redirects=True)

    assert answer.status_code == 302
    assert len(redirecting.requests) == 1
    assert inside.requests == []


def test_no_proxy_is_taken_from_the_environment(receiver, monkeypatch):
    endpoint, proxy = receiver(200), receiver(200)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{proxy.port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)

    answer = post(development(Dns({})), endpoint.url)

    assert answer.status_code == 200
    assert len(endpoint.requests) == 1 and proxy.requests == []
