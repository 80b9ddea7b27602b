"""Ethernet MAC addresses: parsing, formatting, derivation."""

from __future__ import annotations

import hashlib
import re

BROADCAST = b"\xff" * 6
_MAC_RE = re.compile(r"^[0-9A-Fa-f]{2}([:-]?)[0-9A-Fa-f]{2}(?:\1[0-9A-Fa-f]{2}){4}$")


def parse_mac(text: str) -> bytes:
    """Parse ``aa:bb:cc:dd:ee:ff`` (or ``-`` separated, or 12 hex digits).

    Raises ValueError with the offending text."""
    if not _MAC_RE.match(text):
        raise ValueError(f"not a MAC address: {text!r}")
    return bytes.fromhex(text.replace(":", "").replace("-", ""))


def format_mac(mac: bytes) -> str:
    """``bytes`` of length 6 -> ``aa:bb:cc:dd:ee:ff`` (lowercase, Linux style)."""
    return mac.hex(":")


def is_multicast(mac: bytes) -> bool:
    """The I/G bit: group addresses, broadcast included."""
    return bool(mac[0] & 0x01)


def is_unicast_assignable(mac: bytes) -> bool:
    """A MAC a TAP device may carry: not a group address, not all zero."""
    return len(mac) == 6 and not is_multicast(mac) and mac != b"\x00" * 6


def _local_unicast(raw: bytes) -> bytes:
    # Set the locally administered bit, clear the group bit (IEEE 802 U/L, I/G).
    return bytes([(raw[0] | 0x02) & 0xFE]) + raw[1:6]


def stable_mac(machine_id: str, network: str, dev: str, netns: str = "") -> bytes:
    """A locally administered unicast MAC derived from the host's machine-id,
    the network, the device name and the network namespace the device lives
    in, so that a restarted daemon keeps its neighbours' ARP entries valid.
    Different networks, several daemons of one network on one host
    (different devices), and daemons with one device name in different
    namespaces of one host get different MACs.  ``netns`` is "" for the
    host's own namespace, which keeps the MACs of earlier releases there."""
    key = f"vlan-nats\0{machine_id.strip()}\0{network}\0{dev}"
    if netns:
        key += f"\0netns\0{netns}"
    digest = hashlib.sha256(key.encode()).digest()
    return _local_unicast(digest)


def random_mac(random6: bytes) -> bytes:
    """A locally administered unicast MAC from 6 random bytes."""
    if len(random6) < 6:
        raise ValueError("random_mac needs 6 bytes")
    return _local_unicast(random6)
