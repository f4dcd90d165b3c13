"""Where a webhook may go: http(s) to public addresses only, checked on the addresses the name resolves to now.

The caller connects to the checked address itself (robotni/webhooks/post.py), so a name that resolves to a public
address for the check and a private one a moment later (DNS rebinding) cannot reach the private one.
`getaddrinfo` also turns the odd spellings `2130706433` and `0177.0.0.1` into 127.0.0.1 before the check.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from robotni.errors import UnsafeURL

DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # the name as written: the Host header, TLS SNI and certificate check use it
    port: int
    path: str  # with its query
    addresses: tuple[str, ...]  # what host resolved to, checked


def public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone (fe80::1%eth0) is link-local anyway
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    refused = ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_unspecified
    return ip.is_global and not (refused or ip.is_reserved)


def parse(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path) of an http(s) URL without credentials; UnsafeURL otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS:
        raise UnsafeURL(f"{url!r}: only http and https URLs")
    if not parts.hostname:
        raise UnsafeURL(f"{url!r}: no host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeURL(f"{url!r}: no credentials in the URL (the signature authenticates Robotni)")
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise UnsafeURL(f"{url!r}: bad port") from None
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, parts.hostname, port, path


def resolve(url: str, allow_private: bool) -> Target:
    """The URL's target with every address its host resolves to; UnsafeURL if any is not public."""
    scheme, host, port, path = parse(url)
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeURL(f"{host!r} does not resolve: {exc}") from None
    addresses = tuple(dict.fromkeys(str(info[4][0]) for info in found))
    refused = [a for a in addresses if not public(a)]
    if refused and not allow_private:
        raise UnsafeURL(f"{host!r} is or resolves to a non-public address ({', '.join(refused)})")
    return Target(scheme, host, port, path, addresses)
