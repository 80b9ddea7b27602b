"""Duplicate IPv4 addresses (RFC 5227's probe and defend, over the control
plane).  Pure: bytes in, values out; time is passed in.

Every node listens on ``<ctl>.addr.<address as 8 hex digits>`` for each
IPv4 address on its TAP.  A node that gets an address (at start, ``ip
addr add``, ``--address auto``) probes: it asks that subject, and every
other holder answers with a Claim naming itself.  The holder that is
asked records the asker as a conflict too, so both name each other.
Probes repeat every PROBE_INTERVAL seconds, so a conflict made while the
two were apart is found, and one that ended is forgotten.  The address
service asks the same subject before it leases an address (a node may
hold it statically).  Documented in docs/wire-format.md.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import asdict, dataclass, fields

from .control import NODE_ID_RE
from .subjects import SubjectScheme

MAX_CLAIM = 1024
PROBE_INTERVAL = 30.0  # seconds between re-probes of each held address
PROBE_WAIT = 0.5  # seconds to collect the holders' answers
FORGET_AFTER = 2.5 * PROBE_INTERVAL  # a conflict not seen again since


def claim_subject(scheme: SubjectScheme, address: str) -> str:
    """``198.18.0.2`` -> ``<ctl>.addr.c6120002`` (the spelling of routed ARP)."""
    return f"{scheme.control}.addr.{ipaddress.IPv4Address(address).packed.hex()}"


def ipv4_of(cidrs: tuple[str, ...] | list[str]) -> list[str]:
    """The IPv4 addresses (without prefix length) among ``ip addr``'s CIDRs."""
    out = []
    for cidr in cidrs:
        try:
            ip = ipaddress.ip_interface(cidr).ip
        except ValueError:
            continue
        if ip.version == 4 and str(ip) not in out:
            out.append(str(ip))
    return out


@dataclass(frozen=True, slots=True)
class Claim:
    """Who holds (or asks for) an address: what tells a node apart."""

    node_id: str
    hostname: str
    dev: str
    netns: str | None
    mac: str
    address: str
    how: str = "static"  # static (ip addr, --address) or ipam (a lease); "" in a query

    def encode(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def decode(cls, data: bytes) -> Claim | None:
        """A claim from another node, or None when it is not one."""
        if len(data) > MAX_CLAIM:
            return None
        try:
            d = json.loads(data)
            known = {f.name for f in fields(cls)}
            claim = cls(**{k: v for k, v in d.items() if k in known})
            ipaddress.IPv4Address(claim.address)
        except (ValueError, TypeError, UnicodeDecodeError, RecursionError, AttributeError):
            return None
        texts = (claim.hostname, claim.dev, claim.mac, claim.how)
        if not NODE_ID_RE.match(str(claim.node_id)) or not all(isinstance(t, str) for t in texts):
            return None
        if claim.netns is not None and not isinstance(claim.netns, str):
            return None
        return claim

    def describe(self) -> str:
        """``node=.. host=.. netns=.. dev=.. mac=..`` for log lines."""
        where = f" netns={self.netns}" if self.netns else ""
        return f"node={self.node_id} host={self.hostname}{where} dev={self.dev} mac={self.mac}"

    def name(self) -> str:
        """``host/netns/dev (MAC)`` for status lines."""
        where = "/".join(x for x in (self.hostname, self.netns, self.dev) if x)
        return f"{where} ({self.mac})"


class Conflicts:
    """The other holders of our addresses, as last heard (by our probe, or
    by theirs), forgotten FORGET_AFTER seconds after they were last heard."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], tuple[Claim, float]] = {}  # (address, node) -> last

    def heard(self, other: Claim, now: float) -> bool:
        """``other`` holds one of our addresses; True when that is news."""
        key = (other.address, other.node_id)
        new = key not in self._seen
        self._seen[key] = (other, now)
        return new

    def probed(self, address: str, others: list[Claim], now: float) -> list[Claim]:
        """Our probe of ``address`` was answered by ``others`` (maybe none):
        the holders not known before are returned."""
        new = [o for o in others if self.heard(o, now)]
        answered = {o.node_id for o in others}
        for key in [k for k in self._seen if k[0] == address and k[1] not in answered]:
            del self._seen[key]
        return new

    def keep_only(self, addresses: list[str]) -> None:
        """Forget the conflicts of addresses we no longer hold."""
        for key in [k for k in self._seen if k[0] not in addresses]:
            del self._seen[key]

    def current(self, now: float) -> list[Claim]:
        for key in [k for k, (_, t) in self._seen.items() if now - t > FORGET_AFTER]:
            del self._seen[key]
        return sorted((c for c, _ in self._seen.values()), key=lambda c: (c.address, c.node_id))

    def status(self, now: float) -> list[dict[str, object]]:
        """The ``duplicate_addresses`` field of the status document."""
        return [
            {**asdict(c), "last_seen_s_ago": round(now - self._seen[(c.address, c.node_id)][1], 1)}
            for c in self.current(now)
        ]
