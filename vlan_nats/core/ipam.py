"""The address service's rules: pools, leases and its messages (documented
in docs/wire-format.md).  Pure: text and bytes in, values out.

Requests go to ``<prefix>.<network>.ctl.ipam`` (queue group ``ipam``) as
JSON objects of at most MAX_REQUEST bytes:

    {"op": "request", "mac": "02:…", "node": "<node id>", "hostname": "h1"}
    {"op": "renew",   "mac": …, "node": …, "hostname": …, "address": "198.18.0.5"}
    {"op": "release", "mac": …, "node": …, "address": "198.18.0.5"}

and get ``{"ok": true, "address": "198.18.0.5/24", "lease": 3600,
"expires": <unix time>}`` or ``{"ok": false, "error": "<why>"}``.  Leases live
in a JetStream KV bucket per network: key ``addr.<a>.<b>.<c>.<d>`` holds the
Lease as JSON; creating that key is what allocates the address.  Key
``mac.<hex>`` remembers the address a MAC held last, so that it gets it
back.  A request costs a few key operations (its MAC's address, then
addresses from a MAC-derived offset); only a pool whose first PROBES
candidates are all taken is read whole.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass

from .control import MAX_REQUEST, NODE_ID_RE, parse_request
from .mac import format_mac, is_unicast_assignable, parse_mac

QUEUE_GROUP = "ipam"
OPS = ("request", "renew", "release")
DEFAULT_LEASE = 3600.0
MIN_LEASE = 10.0
HOSTNAME_RE = re.compile(r"^[A-Za-z0-9._-]{0,64}$")


class PoolError(ValueError):
    """A pool, range or exclusion that cannot be used; one line."""


def bucket_name(prefix: str, network: str) -> str:
    """The KV bucket of one network (bucket names take [A-Za-z0-9_-])."""
    return "vlan-nats-ipam_" + prefix.replace(".", "_") + "_" + network


def address_key(address: str) -> str:
    return "addr." + address


def mac_key(mac: str) -> str:
    """Where the address a MAC last held is remembered (stickiness, also
    after a release): ``mac.<12 hex digits>``."""
    return "mac." + mac.replace(":", "")


def address_of_key(key: str) -> str | None:
    return key.removeprefix("addr.") if key.startswith("addr.") else None


@dataclass(frozen=True, slots=True)
class Pool:
    network: ipaddress.IPv4Network
    first: ipaddress.IPv4Address
    last: ipaddress.IPv4Address
    exclude: frozenset[ipaddress.IPv4Address]

    @classmethod
    def parse(cls, cidr: str, span: str | None = None, exclude: tuple[str, ...] = ()) -> Pool:
        try:
            net = ipaddress.IPv4Network(cidr, strict=False)
        except ValueError:
            raise PoolError(
                f"bad pool {cidr!r}: expected an IPv4 CIDR such as 198.18.0.0/24"
            ) from None
        if "/" not in cidr:
            raise PoolError(f"bad pool {cidr!r}: give a prefix length, e.g. {cidr}/24")
        if net.network_address != ipaddress.IPv4Interface(cidr).ip:
            raise PoolError(f"bad pool {cidr!r}: host bits set; the network is {net}")
        hosts = (net[0], net[-1]) if net.prefixlen >= 31 else (net[1], net[-2])
        first, last = hosts
        if span is not None:
            try:
                a, b = span.split("-", 1)
                first, last = ipaddress.IPv4Address(a.strip()), ipaddress.IPv4Address(b.strip())
            except ValueError:
                raise PoolError(
                    f"bad range {span!r}: expected FIRST-LAST, e.g. 198.18.0.10-198.18.0.99"
                ) from None
            if not (hosts[0] <= first <= last <= hosts[1]):
                raise PoolError(f"bad range {span!r}: not an ordered range inside {net}")
        try:
            excl = frozenset(ipaddress.IPv4Address(x) for x in exclude)
        except ValueError as e:
            raise PoolError(f"bad --exclude: {e}") from None
        return cls(net, first, last, excl)

    def describe(self) -> str:
        """``198.18.0.0/24 range 198.18.0.1-198.18.0.254 exclude ...``: what
        tells two pools apart (instances of one network must agree)."""
        excl = ",".join(str(x) for x in sorted(self.exclude))
        return f"{self.network} range {self.first}-{self.last}" + (
            f" exclude {excl}" if excl else ""
        )

    @property
    def size(self) -> int:
        return int(self.last) - int(self.first) + 1 - sum(1 for x in self.exclude if x in self)

    def __contains__(self, addr: object) -> bool:
        return isinstance(addr, ipaddress.IPv4Address) and self.first <= addr <= self.last

    def allows(self, address: str) -> bool:
        try:
            a = ipaddress.IPv4Address(address)
        except ValueError:
            return False
        return a in self and a not in self.exclude

    def with_prefix(self, address: str) -> str:
        return f"{address}/{self.network.prefixlen}"

    def candidates(self, start: int = 0) -> Iterator[str]:
        """Every usable address, beginning at offset ``start`` (so that two
        instances picking for different MACs seldom try the same one)."""
        n = int(self.last) - int(self.first) + 1
        for i in range(n):
            a = ipaddress.IPv4Address(int(self.first) + (start + i) % n)
            if a not in self.exclude:
                yield str(a)


PROBES = 16  # addresses tried one by one before the whole bucket is read


def start_offset(mac: str, size: int) -> int:
    """Where a MAC's search begins in the pool: stable, spread."""
    return int(mac.replace(":", ""), 16) % max(size, 1)


@dataclass(frozen=True, slots=True)
class Lease:
    address: str  # without prefix length
    mac: str
    node: str
    hostname: str
    expires: float  # unix time

    def encode(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def decode(cls, data: bytes) -> Lease | None:
        try:
            d = json.loads(data)
            lease = cls(
                str(d["address"]), str(d["mac"]), str(d["node"]), str(d["hostname"]),
                float(d["expires"]),
            )  # fmt: skip
        except (ValueError, TypeError, KeyError, UnicodeDecodeError, RecursionError):
            return None
        return lease

    def live(self, now: float) -> bool:
        return self.expires > now


@dataclass(frozen=True, slots=True)
class Request:
    op: str
    mac: str
    node: str
    hostname: str
    address: str | None


def parse(data: bytes) -> Request | str:
    """A valid request, or the reason it is refused (counted, logged)."""
    if len(data) > MAX_REQUEST:
        return "oversized"
    d = parse_request(data)
    if d is None:
        return "not a JSON object"
    op, mac, node = d.get("op"), d.get("mac"), d.get("node")
    hostname, address = d.get("hostname", ""), d.get("address")
    if op not in OPS:
        return "bad op"
    if not isinstance(mac, str):
        return "bad mac"
    try:
        m = parse_mac(mac)
    except ValueError:
        return "bad mac"
    if not is_unicast_assignable(m):
        return "bad mac"
    if not isinstance(node, str) or not NODE_ID_RE.match(node):
        return "bad node"
    if not isinstance(hostname, str) or not HOSTNAME_RE.match(hostname):
        return "bad hostname"
    if address is not None:
        try:
            address = str(ipaddress.IPv4Address(address))
        except ValueError:
            return "bad address"
    elif op != "request":
        return "bad address"
    return Request(str(op), format_mac(m), node, hostname, address)


def request(op: str, mac: str, node: str, hostname: str, address: str | None = None) -> bytes:
    d: dict[str, object] = {"op": op, "mac": mac, "node": node, "hostname": hostname[:64]}
    if address is not None:
        d["address"] = address
    return json.dumps(d, separators=(",", ":")).encode()


def grant(pool: Pool, lease: Lease, seconds: float) -> bytes:
    return json.dumps(
        {
            "ok": True,
            "address": pool.with_prefix(lease.address),
            "lease": seconds,
            "expires": lease.expires,
        }  # fmt: skip
    ).encode()


def refuse(why: str) -> bytes:
    return json.dumps({"ok": False, "error": why}).encode()


@dataclass(frozen=True, slots=True)
class Reply:
    ok: bool
    address: str  # CIDR on success
    lease: float
    error: str


def parse_reply(data: bytes) -> Reply | None:
    try:
        d = json.loads(data)
        if not isinstance(d, dict):
            return None
        if d.get("ok") is True and d.get("released") is True:
            return Reply(True, "", 0.0, "")
        if d.get("ok") is True:
            iface = ipaddress.IPv4Interface(str(d["address"]))
            if "/" not in str(d["address"]):
                return None
            return Reply(True, str(iface), max(float(d["lease"]), MIN_LEASE), "")
        return Reply(False, "", 0.0, str(d.get("error", "refused"))[:200])
    except (ValueError, TypeError, KeyError, UnicodeDecodeError, RecursionError):
        return None


def choices(pool: Pool, leases: dict[str, Lease], mac: str, now: float) -> Iterator[str]:
    """The addresses to try for ``mac``, best first: the one it held (sticky,
    even if expired, unless another MAC took it), then free ones (no lease,
    or an expired one) from the MAC's own starting point."""
    held = sorted((le for le in leases.values() if le.mac == mac), key=lambda le: -le.expires)
    for le in held:
        if pool.allows(le.address):
            yield le.address
    seen = {le.address for le in held}
    for a in pool.candidates(start_offset(mac, pool.size)):
        other = leases.get(a)
        if a not in seen and (other is None or not other.live(now)):
            yield a


RELEASED = b'{"ok":true,"released":true}'
