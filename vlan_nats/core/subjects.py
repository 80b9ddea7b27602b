"""NATS subject naming.

Native scheme (documented in docs/wire-format.md)::

    <prefix>.<network>.u.<mac hex>   unicast to one MAC (12 lowercase hex digits)
    <prefix>.<network>.b             broadcast
    <prefix>.<network>.m.<mac hex>   one multicast group (its group MAC)
    <prefix>.<network>.f             unknown unicast, flooded to bridge-mode nodes
    <prefix>.<network>.arp.<ip hex>  an ARP request for one IPv4 address (8 lowercase
                                     hex digits; core/arp.py says which requests)
    <prefix>.<network>.ctl.…         control plane (see aio/ctlplane.py)

Compat scheme (rapidloop's Go vlan-nats, ``--compat``)::

    vlan.<id>                        broadcast
    vlan.<id>.<hex of "aa:bb:..">    unicast and multicast

The Go original builds its subjects with ``fmt.Sprintf("vlan.%d.%x", id,
mac)`` where ``mac`` is a ``net.HardwareAddr``.  For the verbs v, s, x, X
and q, fmt prefers a value's ``String()`` method (fmt/print.go,
handleMethods), so ``%x`` hex-encodes the *text* ``"aa:bb:cc:dd:ee:ff"``:
34 hex digits, e.g. ``3031...`` for ``01:...``.  The Go node never
subscribes to multicast subjects, so in compat mode we also send multicast
to the broadcast subject, where Go nodes hear it.
"""

from __future__ import annotations

import re

from .frames import FrameKind, classify
from .mac import format_mac

_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]+$")
# A name starts with a letter, digit or '_': "-1" is a mistyped VLAN ID.
_NETWORK_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$")


def validate_prefix(prefix: str) -> str:
    """A subject prefix: one or more dot-separated tokens of [A-Za-z0-9_-]."""
    if not prefix or not all(_TOKEN_RE.match(tok) for tok in prefix.split(".")):
        raise ValueError(
            f"bad subject prefix {prefix!r}: "
            "use dot-separated tokens of letters, digits, '_' or '-'"
        )
    return prefix


def validate_network(network: str) -> str:
    """A network: a VLAN ID 0-4095 or a name of [A-Za-z0-9_-] (max 64)."""
    if network.isdigit():
        if int(network) > 4095:
            raise ValueError(f"bad network {network!r}: a VLAN ID is 0-4095")
        return str(int(network))
    if not _NETWORK_NAME_RE.match(network):
        raise ValueError(
            f"bad network {network!r}: use a VLAN ID 0-4095 or a name of letters, digits, "
            "'_', '-' (not starting with '-')"
        )
    return network


def go_hex_mac(mac: bytes) -> str:
    """What Go's ``fmt.Sprintf("%x", net.HardwareAddr(mac))`` prints."""
    return format_mac(mac).encode("ascii").hex()


class SubjectScheme:
    """Subjects of one network.  ``for_frame`` caches per destination MAC."""

    __slots__ = (
        "prefix", "network", "compat", "base", "broadcast", "flood", "control", "arp_prefix",
        "unicast_prefix", "multicast_prefix", "_cache",
    )  # fmt: skip

    def __init__(self, prefix: str, network: str, compat: bool = False) -> None:
        self.prefix = validate_prefix(prefix)
        self.network = validate_network(network)
        self.compat = compat
        if compat and not self.network.isdigit():
            raise ValueError("--compat needs a numeric network (the Go original's VLAN ID)")
        self.base = f"{self.prefix}.{self.network}"
        self.broadcast = self.base if compat else f"{self.base}.b"
        self.flood = f"{self.base}.f"
        self.control = f"{self.base}.ctl"
        self.arp_prefix = f"{self.base}.arp."
        # A MAC's subject is a prefix and the MAC spelled (spell_mac).  Go
        # nodes (compat) hear multicast on the broadcast subject: no group
        # prefix.  The C datapath is given these prefixes and spells alike.
        self.unicast_prefix = f"{self.base}." if compat else f"{self.base}.u."
        self.multicast_prefix = "" if compat else f"{self.base}.m."
        self._cache: dict[bytes, tuple[str, FrameKind]] = {}

    def spell_mac(self, mac: bytes) -> str:
        """A MAC in a subject: 12 lowercase hex digits, or in compat mode
        what the Go original spells (go_hex_mac)."""
        return go_hex_mac(mac) if self.compat else mac.hex()

    def unicast(self, mac: bytes) -> str:
        return self.unicast_prefix + self.spell_mac(mac)

    def multicast(self, mac: bytes) -> str:
        """A group's own subject (compat: the MAC after the base, which Go
        nodes never subscribe to; route() sends groups to broadcast then)."""
        return (self.multicast_prefix or f"{self.base}.") + self.spell_mac(mac)

    def arp(self, address: bytes) -> str:
        """The subject of ARP requests for IPv4 ``address`` (4 bytes)."""
        return self.arp_prefix + address.hex()

    def for_frame(self, dst: bytes) -> str:
        """Subject for a frame whose destination MAC is ``dst`` (6 bytes)."""
        return self.route(dst)[0]

    def route(self, dst: bytes) -> tuple[str, FrameKind]:
        """(subject, kind) for destination ``dst``; cached, for the hot path."""
        hit = self._cache.get(dst)
        if hit is None:
            kind = classify(dst)
            if kind is FrameKind.UNICAST:
                subject = self.unicast(dst)
            elif kind is FrameKind.BROADCAST or not self.multicast_prefix:
                subject = self.broadcast
            else:
                subject = self.multicast(dst)
            if len(self._cache) >= 4096:  # bounded: destinations are local hosts' choice
                self._cache.clear()
            hit = self._cache[dst] = (subject, kind)
        return hit

    def subscriptions(
        self,
        mac: bytes,
        groups: frozenset[bytes],
        bridged: frozenset[bytes] | None = None,
        arp: frozenset[bytes] | None = None,
    ) -> frozenset[str]:
        """What a node with ``mac`` that joined ``groups`` listens to.

        A bridge-mode node (``bridged``: the MACs learned behind its bridge)
        also listens to their unicast subjects, to flooded unknown unicast,
        and to every multicast group: hosts behind it join groups its own
        kernel never sees.  ``arp``: the IPv4 addresses (4 bytes each) whose
        ARP requests reach us (routed ARP; None: off).  A bridge-mode node
        takes every ARP subject: the addresses of the hosts behind it are
        not known until they speak, and some never do first."""
        wanted = {self.unicast(mac), self.broadcast}
        if bridged is None:
            wanted.update(self.multicast(g) for g in groups if classify(g) is FrameKind.MULTICAST)
        else:
            wanted.update(self.unicast(m) for m in bridged)
            wanted.update((self.flood, f"{self.base}.m.*"))
        if arp is not None and not self.compat:
            if bridged is None:
                wanted.update(self.arp(a) for a in arp)
            else:
                wanted.add(self.arp_prefix + "*")
        return frozenset(wanted)
