"""Text tables for the CLI (aligned columns; --json prints the data instead)."""

from __future__ import annotations

from collections.abc import Sequence

from .core.control import NodeInfo


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


def _addresses(addrs: Sequence[str]) -> str:
    """Addresses for a table: all but IPv6 link-local ones."""
    shown = [a for a in addrs if not a.lower().startswith("fe80:")]
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
                _addresses(p.addresses),
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


def problems(st: dict[str, object]) -> list[str]:
    """What is wrong with one daemon, in words (status, metrics)."""
    out = []
    if not st.get("connected"):
        err = st.get("nats_error")
        out.append(f"not connected to NATS ({err})" if err else "not connected to NATS")
    dup = st.get("duplicate_mac")
    if isinstance(dup, dict):
        others = dup.get("others") or []
        names = ", ".join(
            "/".join(str(o[k]) for k in ("hostname", "netns", "dev") if o.get(k))
            + f" ({o.get('node_id')})"
            for o in others
            if isinstance(o, dict)
        )
        out.append(
            f"duplicate MAC {dup.get('mac')}: also used by {names or 'another node'}, "
            f"{dup.get('frames')} frames, last {dup.get('last_seen_s_ago')} s ago"
        )
    br = st.get("foreign_bridge")
    if br:
        out.append(f"a port of bridge {br} without --bridge: hosts behind it are unreachable")
    return out


def problems_lines(statuses: Sequence[dict[str, object]]) -> list[str]:
    """One line per problem, under the status table."""
    lines = []
    for st in statuses:
        where = f"{st.get('netns')}/{st.get('dev')}" if st.get("netns") else str(st.get("dev"))
        lines += [f"{where}: {p}" for p in problems(st)]
    return lines


def status_table(statuses: Sequence[dict[str, object]]) -> str:
    rows = []
    for s in statuses:
        c = s.get("counters") or {}
        assert isinstance(c, dict)
        drops = c.get("drops") or {}
        if s.get("connected"):
            nats = s.get("server")
        else:
            nats = f"disconnected ({s['nats_error']})" if s.get("nats_error") else "disconnected"
        rows.append(
            (
                s.get("dev"),
                s.get("netns") or "-",
                s.get("network"),
                s.get("mac"),
                s.get("mtu"),
                "up" if s.get("link_up") else "down",
                s.get("mode"),
                nats,
                c.get("tap_rx_frames"),
                c.get("tap_tx_frames"),
                sum(drops.values()) if isinstance(drops, dict) else "-",
                uptime(float(s.get("uptime_s") or 0)),  # type: ignore[arg-type]
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
        "NATS",
        "FRAMES OUT",
        "FRAMES IN",
        "DROPS",
        "UP",
    )
    return table(header, rows)


# -- vlan-nats top ------------------------------------------------------------

_KINDS = ("unicast", "broadcast", "multicast")


def _delta(cur: dict[str, object], prev: dict[str, object] | None, key: str, kind: str) -> int:
    def get(doc: dict[str, object] | None) -> int:
        if doc is None:
            return 0
        by = doc.get(key)
        return int(by.get(kind, 0)) if isinstance(by, dict) else 0

    return max(0, get(cur) - get(prev))


def _drops(doc: dict[str, object] | None) -> int:
    if doc is None:
        return 0
    d = doc.get("drops")
    return sum(int(v) for v in d.values()) if isinstance(d, dict) else 0


def _rate(n: float, dt: float) -> str:
    r = n / dt if dt > 0 else 0.0
    return f"{r:.0f}" if r >= 10 or r == 0 else f"{r:.1f}"


def top_local(
    cur: Sequence[dict[str, object]], prev: dict[tuple[str, str], dict[str, object]], dt: float
) -> str:
    """One frame of rates for the daemons on this host.  ``prev``: the
    previous status documents by (netns, dev), counters taken ``dt`` s
    earlier (one device name may be used in several namespaces)."""
    with_ns = any(st.get("netns") for st in cur)
    rows = []
    for st in cur:
        c = st["counters"]
        assert isinstance(c, dict)
        before = prev.get((str(st.get("netns") or ""), str(st["dev"])))
        pc = before["counters"] if before else None
        assert pc is None or isinstance(pc, dict)
        out = [_rate(_delta(c, pc, "tx_by_kind", k), dt) for k in _KINDS]
        inn = [_rate(_delta(c, pc, "rx_by_kind", k), dt) for k in _KINDS]
        out_bits = sum(_delta(c, pc, "tx_bytes_by_kind", k) for k in _KINDS) * 8 / 1e6
        in_bits = sum(_delta(c, pc, "rx_bytes_by_kind", k) for k in _KINDS) * 8 / 1e6
        rows.append(
            (
                *((st.get("netns") or "-",) if with_ns else ()),
                st["dev"],
                st["network"],
                "up" if st.get("connected") else "DOWN",
                "/".join(out),
                "/".join(inn),
                f"{out_bits / dt:.2f}" if dt > 0 else "0",
                f"{in_bits / dt:.2f}" if dt > 0 else "0",
                _rate(max(0, _drops(c) - _drops(pc)), dt),
                st.get("remote_macs", "-"),
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
