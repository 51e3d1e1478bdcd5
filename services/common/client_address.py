"""The client's network address, as far as a process serving HTTP can trust it (the
gateway's login rate limits and session list, billing's card-entry rate limit)."""
import ipaddress
from functools import lru_cache


@lru_cache(maxsize=8)
def trusted_networks(setting):
    """`TRUSTED_PROXIES` — comma-separated IPs or CIDRs — as networks."""
    return tuple(
        ipaddress.ip_network(item.strip(), strict=False) for item in (setting or "").split(",") if item.strip()
    )


def _address(text):
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _trusted(address, networks):
    return any(address in network for network in networks)


def client_address(request, networks):
    """The socket peer's address; when the peer is a trusted proxy, the rightmost
    `X-Forwarded-For` entry that is not one. A client can put anything on the left of
    that header but cannot append to it, so nothing left of the first untrusted entry
    counts, and neither does anything from an untrusted peer."""
    peer = _address(request.remote_addr or "")
    if peer is None or not _trusted(peer, networks):
        return str(peer) if peer else None
    hops = [hop for header in request.headers.getlist("X-Forwarded-For") for hop in header.split(",")]
    address = peer
    for hop in reversed(hops):
        forwarded = _address(hop)
        if forwarded is None:
            break  # not an address: keep the last one a trusted hop vouched for
        address = forwarded
        if not _trusted(forwarded, networks):
            break
    return str(address)
