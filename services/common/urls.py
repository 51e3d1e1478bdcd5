"""URL rules more than one process applies the same way."""
from urllib.parse import unquote, urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url):
    """The origin (`scheme://host[:port]`) of an http(s) URL as browsers write it in
    an `Origin` header, or None when `url` has no such origin."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except (AttributeError, ValueError):
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in DEFAULT_PORTS or not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def is_under(url, base_url):
    """Whether `url` is on `base_url`: the same origin (scheme, host, port), no
    user name or password, and a path at or below the base's path (no `.` or `..`
    segment that a browser would resolve out of it)."""
    origin = origin_of(url)
    if origin is None or origin != origin_of(base_url):
        return False
    parts, base = urlsplit(url.strip()), urlsplit(base_url.strip())
    if parts.username is not None or parts.password is not None:
        return False
    if any(unquote(segment) in (".", "..") for segment in parts.path.split("/")):
        return False
    base_path = base.path.rstrip("/")
    return parts.path == base_path or parts.path.startswith(f"{base_path}/")
