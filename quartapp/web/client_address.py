"""The address a request came from, for the sessions page.

The socket's peer is the answer unless that peer is a proxy we were told to trust; only
then does ``X-Forwarded-For`` count. Each trusted proxy appends the peer it saw, so the
list is read from the right, and the first address that is not a trusted proxy is the
client. Everything left of it was written by the client and could say anything.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network

# "203.0.113.7:51234" and "[2001:db8::1]:443": some proxies write the peer's port too.
_WITH_PORT = re.compile(r"^(?:\[(?P<v6>[^\]]+)\]|(?P<v4>[\d.]+))(?::\d+)?$")


def trusted_networks(entries: Iterable[str] | str) -> tuple[Network, ...]:
    """Proxy addresses and CIDR blocks, from a list or a comma-separated string.

    Raises ValueError naming the entry that is not an address or a network."""
    if isinstance(entries, str):
        entries = entries.split(",")
    networks: list[Network] = []
    for entry in entries:
        text = str(entry).strip()
        if not text:
            continue
        try:
            networks.append(ip_network(text, strict=False))
        except ValueError as error:
            raise ValueError(f"{text!r} is not an IP address or a network") from error
    return tuple(networks)


def parse_address(text: str | None) -> Address | None:
    """An address as a client, a socket or a proxy states it, or None if it is not one.

    IPv4 addresses mapped into IPv6 (``::ffff:192.0.2.1``, what a dual-stack socket
    reports) come back as IPv4, so they match IPv4 networks and read as people expect."""
    if not text:
        return None
    text = text.strip()
    try:
        address = ip_address(text)
    except ValueError:
        match = _WITH_PORT.match(text)
        if match is None:
            return None
        try:
            address = ip_address(match["v6"] or match["v4"])
        except ValueError:
            return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: Address, trusted: Sequence[Network]) -> bool:
    return any(address.version == network.version and address in network for network in trusted)


def client_ip(peer: str | None, forwarded_for: Iterable[str], trusted: Sequence[Network]) -> str:
    """The client's address as text, or "" when the peer is not an IP (a Unix socket).

    ``forwarded_for`` holds the ``X-Forwarded-For`` header values in the order received."""
    address = parse_address(peer)
    if address is None:
        return ""
    hops = [hop for value in forwarded_for for hop in value.split(",")]
    for hop in reversed(hops):
        if not _trusted(address, trusted):
            break
        stated = parse_address(hop)
        if stated is None:
            break  # a trusted proxy wrote nonsense: the proxy itself is what we know
        address = stated
    return str(address)
