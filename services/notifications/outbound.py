"""Outgoing HTTP to URLs merchants choose (webhooks), kept away from the portal's own
network: loopback, private, link-local and every other address that is not global.

The rules apply twice. When a URL is saved, `Destinations.check_url` gives the
merchant a clear refusal. When a request is sent, `PinnedAdapter` resolves the host
once, refuses unless every address it resolves to is allowed, and connects to the
address it checked while the hostname still goes in the Host header and in TLS (SNI
and the certificate check): a DNS answer that changes after the check (rebinding)
cannot move the connection elsewhere. `session()` adds what the adapter cannot see:
no proxy or .netrc from the environment, and no redirect followed.

Why an adapter of our own on requests' documented hook
(`build_connection_pool_key_attributes`) rather than a library: advocate is
unmaintained and pinned to an old urllib3; drawbridge and egressweave are new and wrap
httpx only; requests-hardened, the maintained one for requests, judges only the first
address a name resolves to, takes no resolver a test can replace, and can let through
loopback only, not "private addresses but never the portal's own ports" for
development.
"""
import ipaddress
import re
import socket
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from services.common.config import setting_is_on
from services.common.urls import DEFAULT_PORTS

# Names that mean this machine whatever DNS says.
LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")
# Digits, hex digits, `x` and dots: what the C library may read as an IPv4 address
# (`2130706433`, `0x7f.1`, `127.1`, `0177.0.0.1` are all 127.0.0.1 to it).
NUMERIC_HOST = re.compile(r"^[0-9a-fx.]+$")


class DestinationRefused(requests.RequestException):
    """A URL or address outgoing requests may not reach. Its text names the host and
    address, never the URL's credentials; trying again does not change the answer."""


class NameNotResolved(requests.ConnectionError):
    """A name with no address now; it may have one later."""


def system_resolver(host, port):
    """Every address `host` resolves to (hosts file, then DNS), as text."""
    return [info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def ip_literal(host):
    """The address `host` spells, in any form the C library accepts, or None for a name."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if NUMERIC_HOST.match(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _reached(address):
    """The IPv4 address an IPv4-mapped IPv6 one (`::ffff:127.0.0.1`) reaches; else itself."""
    if address.version == 6 and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_public(address):
    """Global unicast: not loopback, private, link-local, shared (CGNAT), unspecified,
    multicast, reserved, or a 6to4 address that wraps one of those."""
    address = _reached(address)
    if address.version == 6 and address.sixtofour is not None and not is_public(address.sixtofour):
        return False
    return address.is_global and not (address.is_multicast or address.is_reserved)


def is_local(address):
    """Loopback or private: what the development setting lets through. Link-local
    (cloud metadata at 169.254.169.254), unspecified and multicast never are."""
    address = _reached(address)
    return (address.is_loopback or address.is_private) and not (
        address.is_link_local or address.is_unspecified or address.is_multicast
    )


def _is_local_name(host):
    name = host.rstrip(".")
    return name in LOCAL_NAMES or name.endswith(".localhost")


def portal_ports(config):
    """Every port config.yaml gives the portal's processes and servers: each `*_PORT`,
    the port of `WEB_SERVER_ADDRESS` and any port written in a `*_URL` or `*_URI`."""
    ports = set()
    for key, value in config.items():
        if not isinstance(key, str) or value in (None, ""):
            continue
        if key.endswith("_PORT"):
            ports.add(_port_number(value))
        elif key == "WEB_SERVER_ADDRESS":
            ports.add(_port_number(str(value).rpartition(":")[2]))
        elif key.endswith(("_URL", "_URI")):
            try:
                ports.add(urlsplit(str(value)).port)
            except ValueError:
                continue
    return frozenset(port for port in ports if port)


def _port_number(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class Destinations:
    """Where outgoing requests may go: global addresses; with `allow_local` (a
    development setting) loopback and private addresses too, except on
    `portal_ports`. `resolver(host, port)` answers a name's addresses."""

    allow_local: bool = False
    portal_ports: frozenset = frozenset()
    resolver: Callable = field(default=system_resolver, compare=False)

    @classmethod
    def from_config(cls, config):
        return cls(setting_is_on(config.get("WEBHOOK_ALLOW_PRIVATE_ADDRESSES", False)), portal_ports(config))

    def check_url(self, url):
        """Raise DestinationRefused for a URL requests may never go to. A name that
        does not resolve now passes: each request checks it again."""
        parts = urlsplit(url)
        refuse_credentials(parts)
        try:
            self.addresses(parts.hostname or "", parts.port or DEFAULT_PORTS.get(parts.scheme.lower()))
        except NameNotResolved:
            pass

    def addresses(self, host, port):
        """The addresses `host` stands for, every one of them allowed on `port`;
        DestinationRefused if any is not, NameNotResolved if a name has none."""
        literal = ip_literal(host)
        if literal is not None:
            self._check(literal, port, str(literal))
            return [literal]
        if _is_local_name(host) and not self.allow_local:
            raise DestinationRefused(f"address not allowed: {host}")
        try:
            found = [ipaddress.ip_address(address) for address in self.resolver(host, port)]
        except OSError as error:
            raise NameNotResolved(f"{host} does not resolve: {error}") from None
        if not found:
            raise NameNotResolved(f"{host} does not resolve")
        for address in found:
            self._check(address, port, f"{host} resolves to {address}")
        return found

    def _check(self, address, port, described):
        if is_public(address):
            return
        if self.allow_local and is_local(address):
            if port not in self.portal_ports:
                return
            raise DestinationRefused(f"address not allowed: {described}, port {port} is the portal's own")
        raise DestinationRefused(f"address not allowed: {described}")


def refuse_credentials(parts):
    """requests would send `user:pass@` as Basic auth: such a URL is refused, unquoted."""
    if parts.username is not None or parts.password is not None:
        raise DestinationRefused("credentials in the URL are not allowed")


class PinnedAdapter(HTTPAdapter):
    """Connects only where `destinations` allows, to the address it checked."""

    def __init__(self, destinations):
        super().__init__()
        self.destinations = destinations

    def send(self, request, *args, **kwargs):
        refuse_credentials(urlsplit(request.url))
        return super().send(request, *args, **kwargs)

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        host, scheme = host_params["host"] or "", host_params["scheme"]
        [address, *_] = self.destinations.addresses(host, host_params["port"] or DEFAULT_PORTS[scheme])
        host_params["host"] = str(address)
        if scheme == "https" and ip_literal(host) is None:
            # The certificate and SNI are the name's, not the address's.
            pool_kwargs["server_hostname"] = pool_kwargs["assert_hostname"] = host
        return host_params, pool_kwargs

    def add_headers(self, request, **kwargs):
        # The connection goes to an address; the server still hears the name it serves.
        request.headers["Host"] = urlsplit(request.url).netloc


class PinnedSession(requests.Session):
    """A session that never follows a redirect, whatever its caller asks."""

    def get_redirect_target(self, response):
        return None


def session(destinations):
    """A requests session that goes only where `destinations` allows: through
    `PinnedAdapter`, with no proxy or credentials from the environment."""
    pinned = PinnedSession()
    pinned.trust_env = False
    adapter = PinnedAdapter(destinations)
    pinned.mount("http://", adapter)
    pinned.mount("https://", adapter)
    return pinned
