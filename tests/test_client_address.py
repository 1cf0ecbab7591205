"""The client's address: the socket's peer, or what trusted proxies say it is."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quartapp import create_app
from quartapp.config import ConfigError
from quartapp.web.client_address import client_ip, parse_address, trusted_networks

from .conftest import REDIS_URL

LOCAL = trusted_networks(["127.0.0.1", "10.0.0.0/8", "2001:db8:ffff::/48"])


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        # Nobody is trusted: the peer, whatever the header says.
        ("203.0.113.7", ["198.51.100.1"], "203.0.113.7"),
        ("203.0.113.7", [], "203.0.113.7"),
        # A trusted proxy: the right-most address that is not a trusted proxy.
        ("127.0.0.1", ["198.51.100.1"], "198.51.100.1"),
        ("127.0.0.1", ["6.6.6.6, 198.51.100.1"], "198.51.100.1"),
        ("127.0.0.1", ["6.6.6.6, 198.51.100.1, 10.1.2.3"], "198.51.100.1"),
        ("10.9.9.9", ["6.6.6.6", "198.51.100.1", "10.1.2.3"], "198.51.100.1"),
        # A trusted proxy without the header is itself the client.
        ("127.0.0.1", [], "127.0.0.1"),
        # Only proxies in the chain: the left-most of them.
        ("127.0.0.1", ["10.0.0.5, 10.0.0.6"], "10.0.0.5"),
        # A spoofed left part never counts, even if it names a trusted proxy.
        ("127.0.0.1", ["10.0.0.5, 198.51.100.1"], "198.51.100.1"),
        # Garbage from a trusted proxy: stop at what is known.
        ("127.0.0.1", ["unknown"], "127.0.0.1"),
        ("127.0.0.1", ["198.51.100.1, nonsense, 10.0.0.5"], "10.0.0.5"),
        ("127.0.0.1", [""], "127.0.0.1"),
        # Ports, brackets, IPv6, and IPv4 mapped into IPv6.
        ("127.0.0.1", ["198.51.100.1:51234"], "198.51.100.1"),
        ("127.0.0.1", ["[2001:db8::1]:443"], "2001:db8::1"),
        ("127.0.0.1", [" 2001:DB8::1 "], "2001:db8::1"),
        ("::ffff:127.0.0.1", ["198.51.100.1"], "198.51.100.1"),
        ("::ffff:203.0.113.7", [], "203.0.113.7"),
        ("2001:db8:ffff::1", ["198.51.100.1"], "198.51.100.1"),
        ("2001:db8:fffe::1", ["198.51.100.1"], "2001:db8:fffe::1"),
        # Not an IP (a Unix socket, or no peer at all): unknown, headers or not.
        (None, ["198.51.100.1"], ""),
        ("<local>", ["198.51.100.1"], ""),
        ("/run/app.sock", [], ""),
    ],
)
def test_client_ip(peer: str | None, forwarded: list[str], expected: str) -> None:
    assert client_ip(peer, forwarded, LOCAL) == expected


def test_no_trusted_proxies_means_the_peer() -> None:
    assert client_ip("127.0.0.1", ["198.51.100.1"], ()) == "127.0.0.1"


@given(
    peer=st.ip_addresses(),
    hops=st.lists(st.ip_addresses().map(str) | st.text(max_size=12), max_size=5),
)
def test_the_answer_is_the_peer_or_a_forwarded_address(peer: Any, hops: list[str]) -> None:
    trusted = trusted_networks(["0.0.0.0/1", "::/1"])
    answer = client_ip(str(peer), [", ".join(hops)], trusted)
    known = {str(parse_address(text)) for text in [str(peer), *hops] if parse_address(text)}
    assert answer in known
    address = parse_address(str(peer))
    assert address is not None
    if not any(address.version == net.version and address in net for net in trusted):
        assert answer == str(address)


def test_trusted_networks_reads_lists_and_comma_separated_text() -> None:
    assert trusted_networks("127.0.0.1, 10.0.0.0/8,") == trusted_networks(
        ["127.0.0.1", "10.0.0.0/8"]
    )
    assert [str(n) for n in trusted_networks(["10.1.2.3/8"])] == ["10.0.0.0/8"]
    with pytest.raises(ValueError, match="'nginx' is not an IP address"):
        trusted_networks(["nginx"])


@pytest.mark.parametrize("value", [["10.0.0.0/33"], ["proxy.internal"], 5])
def test_a_bad_trusted_proxy_setting_stops_start_up(value: object) -> None:
    with pytest.raises(ConfigError, match="QUARTAPP_TRUSTED_PROXIES"):
        create_app({"SECRET_KEY": "x" * 32, "REDIS_URL": REDIS_URL, "TRUSTED_PROXIES": value})
