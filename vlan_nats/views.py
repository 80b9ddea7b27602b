"""Text tables for the CLI (aligned columns; --json prints the data instead)."""

from __future__ import annotations

from collections.abc import Sequence

from .core.control import NodeInfo
from .core.status import Status


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells
    )


def uptime(seconds: float) -> str:
    s = int(seconds)
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def _addresses(addrs: Sequence[str], leased: Sequence[str] = ()) -> str:
    """Addresses for a table: all but IPv6 link-local ones; those from the
    address service marked ``(ipam)``."""
    shown = [
        a + (" (ipam)" if a in leased else "") for a in addrs if not a.lower().startswith("fe80:")
    ]
    return ",".join(shown) or "-"


def peers_table(peers: Sequence[NodeInfo]) -> str:
    with_ns = any(p.netns for p in peers)
    rows = []
    for p in peers:
        c = p.counters
        macs = p.macs[0] + (f" (+{len(p.macs) - 1} behind)" if len(p.macs) > 1 else "")
        rows.append(
            (
                p.node_id,
                p.hostname,
                *((p.netns or "-",) if with_ns else ()),
                p.dev,
                macs,
                _addresses(p.addresses, p.leased),
                p.mode,
                p.version,
                uptime(p.uptime_s),
                c.get("tap_rx_frames", "-"),
                c.get("tap_tx_frames", "-"),
                c.get("drops", "-"),
            )
        )
    header = (
        "NODE",
        "HOST",
        *(("NETNS",) if with_ns else ()),
        "DEV",
        "MAC",
        "ADDRESSES",
        "MODE",
        "VERSION",
        "UP",
        "FRAMES OUT",
        "FRAMES IN",
        "DROPS",
    )
    return table(header, rows)


def problems_lines(statuses: Sequence[Status]) -> list[str]:
    """One line per problem, under the status table."""
    lines = []
    for st in statuses:
        where = f"{st.netns}/{st.dev}" if st.netns else st.dev
        lines += [f"{where}: {p}" for p in st.problems()]
    return lines


def status_table(statuses: Sequence[Status]) -> str:
    rows = []
    for s in statuses:
        if s.connected:
            nats = s.server
        else:
            nats = f"disconnected ({s.nats_error})" if s.nats_error else "disconnected"
        rows.append(
            (
                s.dev,
                s.netns or "-",
                s.network,
                s.mac,
                s.mtu,
                "up" if s.link_up else "down",
                s.mode,
                _addresses(s.addresses, [le.get("address", "") for le in s.leases]),
                nats,
                s.counters.get("tap_rx_frames"),
                s.counters.get("tap_tx_frames"),
                f"{s.counters.get('arp_routed', 0)}/{s.counters.get('arp_broadcast', 0)}",
                s.drops,
                uptime(s.uptime_s),
            )
        )
    header = (
        "DEV",
        "NETNS",
        "NETWORK",
        "MAC",
        "MTU",
        "LINK",
        "MODE",
        "ADDRESSES",
        "NATS",
        "FRAMES OUT",
        "FRAMES IN",
        "ARP ROUTED/BCAST",
        "DROPS",
        "UP",
    )
    return table(header, rows)


# -- vlan-nats top ------------------------------------------------------------

_KINDS = ("unicast", "broadcast", "multicast")


def _delta(cur: Status, prev: Status | None, key: str, kind: str) -> int:
    def get(st: Status | None) -> int:
        by = st.counters.get(key) if st is not None else None
        return int(by.get(kind, 0)) if isinstance(by, dict) else 0

    return max(0, get(cur) - get(prev))


def _rate(n: float, dt: float) -> str:
    r = n / dt if dt > 0 else 0.0
    return f"{r:.0f}" if r >= 10 or r == 0 else f"{r:.1f}"


def top_local(cur: Sequence[Status], prev: dict[tuple[str, str], Status], dt: float) -> str:
    """One frame of rates for the daemons on this host.  ``prev``: the
    previous samples by (netns, dev), taken ``dt`` s earlier (one device
    name may be used in several namespaces)."""
    with_ns = any(st.netns for st in cur)
    rows = []
    for st in cur:
        pc = prev.get(st.key)
        out = [_rate(_delta(st, pc, "tx_by_kind", k), dt) for k in _KINDS]
        inn = [_rate(_delta(st, pc, "rx_by_kind", k), dt) for k in _KINDS]
        out_bits = sum(_delta(st, pc, "tx_bytes_by_kind", k) for k in _KINDS) * 8 / 1e6
        in_bits = sum(_delta(st, pc, "rx_bytes_by_kind", k) for k in _KINDS) * 8 / 1e6
        rows.append(
            (
                *((st.netns or "-",) if with_ns else ()),
                st.dev,
                st.network,
                "up" if st.connected else "DOWN",
                "/".join(out),
                "/".join(inn),
                f"{out_bits / dt:.2f}" if dt > 0 else "0",
                f"{in_bits / dt:.2f}" if dt > 0 else "0",
                _rate(max(0, st.drops - (pc.drops if pc else 0)), dt),
                st.remote_macs,
            )
        )
    header = (
        *(("NETNS",) if with_ns else ()),
        "DEV",
        "NETWORK",
        "NATS",
        "OUT pps uni/bc/mc",
        "IN pps uni/bc/mc",
        "OUT Mbit/s",
        "IN Mbit/s",
        "DROPS/s",
        "PEERS",
    )
    return table(header, rows)


def top_peers(cur: Sequence[NodeInfo], prev: dict[str, NodeInfo], dt: float) -> str:
    """Rates per node of the network, from two rounds of ``peers`` answers."""
    rows = []
    for p in cur:
        before = prev.get(p.node_id)

        def d(key: str, p: NodeInfo = p, before: NodeInfo | None = before) -> float:
            now = p.counters.get(key, 0)
            then = before.counters.get(key, 0) if before else now
            if not isinstance(now, int) or not isinstance(then, int):
                return 0
            return max(0, now - then)

        rows.append(
            (
                p.node_id,
                p.hostname,
                p.dev,
                p.macs[0],
                _rate(d("tap_rx_frames"), dt),
                _rate(d("tap_tx_frames"), dt),
                _rate(d("drops"), dt),
            )
        )
    return table(("NODE", "HOST", "DEV", "MAC", "OUT pps", "IN pps", "DROPS/s"), rows)
