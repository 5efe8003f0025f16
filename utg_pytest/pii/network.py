"""IP addresses, kept only when globally routable: private, documentation and other special ranges name no one."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from typing import TYPE_CHECKING

from utg_pytest.pii.context import Candidate, Text
from utg_pytest.pii.lazy import Lazy

if TYPE_CHECKING:
    from ipaddress import IPv4Network, IPv6Network


_VERSION_WORDS = Lazy(
    r"version|firmware|build|release|\bver\b|upgrad|downgrad|update[ds]? to|\bv\d|chrome|firefox"
    r"|safari|android|\bios\b|windows|macos|ubuntu|kernel|driver",
    re.I,
)
_IP_WORDS = Lazy(r"\bip\b|ipv4|address|\bhost|server|client|remote|\bsource|\bfrom\b", re.I)

# IP addresses: only globally routable ones are personal data
_IPV4 = Lazy(r"(?<![\w.])(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?!\w|\.[0-9])")
_IPV6 = Lazy(r"(?<![\w:.])(?:[0-9a-f]{0,4}:){2,7}(?:(?:[0-9]{1,3}\.){3}[0-9]{1,3}|[0-9a-f]{1,4})?(?![\w:])", re.I)


@cache
def _special_networks() -> tuple[tuple[IPv4Network, ...], tuple[IPv6Network, ...]]:
    """The ranges that are not anyone's address: private, shared (CGNAT), loopback, link-local, documentation,
    benchmarking, multicast and reserved; for IPv6, everything outside global unicast 2000::/3, and within it the
    protocol-assignment and documentation ranges."""
    from ipaddress import IPv4Network, IPv6Network

    v4 = (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.0.0.0/24",
        "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24",
        "224.0.0.0/3",
    )  # fmt: skip
    v6 = ("::/3", "4000::/2", "8000::/1", "2001::/23", "2001:db8::/32", "3fff::/20")
    return tuple(IPv4Network(n) for n in v4), tuple(IPv6Network(n) for n in v6)


def _public_ip(text: str) -> bool:
    from ipaddress import IPv4Address, IPv6Address, ip_address

    try:
        address = ip_address(text)
    except ValueError:  # the candidate is not an address: an answer, not an error
        return False
    v4, v6 = _special_networks()
    if isinstance(address, IPv6Address) and address.ipv4_mapped is None:
        return not any(address in net for net in v6)
    embedded = address if isinstance(address, IPv4Address) else address.ipv4_mapped
    return not any(embedded in net for net in v4)


def ips(t: Text) -> Iterator[Candidate]:
    for match in _IPV4.finditer(t.s):
        a, b = match.span()
        if _public_ip(match.group()) and not (t.near(_VERSION_WORDS, a, b, 30, 0) and not t.near(_IP_WORDS, a, b)):
            yield a, b, "ip_address", "ipv4"
    for match in _IPV6.finditer(t.s):
        address = match.group()
        if ("::" in address or address.count(":") == 7 or "." in address) and _public_ip(address):
            yield match.start(), match.end(), "ip_address", "ipv6"
