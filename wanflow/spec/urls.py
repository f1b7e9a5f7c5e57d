"""Asset URLs a spec may name: public http(s) hosts only.

The Wan guide takes custom audio (and images) as public HTTP or HTTPS URLs, so both schemes
are accepted. But a spec runs in CI, next to internal services and the cloud's metadata
endpoint, and an asset URL is fetched there to hash it: a spec must not make CI probe the
inside of its network. So a URL naming `localhost` or an address that is private, loopback,
link-local, multicast, reserved or otherwise not public is refused when the spec is
validated, and `wanflow.run.local.fetch` checks every address a host name resolves to again,
on each connection it opens (redirects included), before it connects.
"""
from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

SCHEMES = ("http", "https")
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

_KINDS = (("is_loopback", "loopback"), ("is_unspecified", "unspecified"),
          ("is_link_local", "link-local"), ("is_multicast", "multicast"),
          ("is_private", "private"), ("is_reserved", "reserved"))


def url_problem(url: str) -> str | None:
    """Why wanflow will not fetch `url`, or None."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018  (raises on a malformed port)
    except ValueError:
        return "not a valid URL"
    if parts.scheme.lower() not in SCHEMES:
        return "not an http or https URL"
    if not host:
        return "no host"
    if parts.username is not None or parts.password is not None:
        return "a user name or password in the URL; use a public URL"
    return host_problem(host)


def host_problem(host: str) -> str | None:
    """Why `host` (a name or a literal address) is not a public host, as far as its spelling
    tells; what a name resolves to is checked when it is fetched."""
    name = host.rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return f"the host '{host}' is this machine; asset URLs must name a public host"
    address = literal_address(name)
    if address is not None:
        kind = refusal(address)
        if kind:
            article = "an" if kind[0] in "aeiou" else "a"
            return (f"the host '{host}' is {article} {kind} address; asset URLs must name a "
                    "public host (wanflow does not fetch from inside the network it runs in)")
    return None


def literal_address(host: str) -> Address | None:
    """The address `host` spells, in any form a resolver accepts (`127.1`, `0x7f000001` and
    `2130706433` are all 127.0.0.1), or None for a name."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if not host or not all(c in "0123456789abcdefxABCDEFX." for c in host):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def refusal(address: Address) -> str | None:
    """What kind of non-public address this is (`loopback`, `private`, …), or None."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for attribute, kind in _KINDS:
        if getattr(address, attribute):
            return kind
    return None if address.is_global else "non-public"
