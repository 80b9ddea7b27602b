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


def peers_table(peers: Sequence[NodeInfo]) -> str:
    rows = []
    for p in peers:
        c = p.counters
        macs = p.macs[0] + (f" (+{len(p.macs) - 1} behind)" if len(p.macs) > 1 else "")
        rows.append(
            (
                p.node_id,
                p.hostname,
                p.dev,
                macs,
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
        "DEV",
        "MAC",
        "MODE",
        "VERSION",
        "UP",
        "FRAMES OUT",
        "FRAMES IN",
        "DROPS",
    )
    return table(header, rows)


def status_table(statuses: Sequence[dict[str, object]]) -> str:
    rows = []
    for s in statuses:
        c = s.get("counters") or {}
        assert isinstance(c, dict)
        drops = c.get("drops") or {}
        rows.append(
            (
                s.get("dev"),
                s.get("netns") or "-",
                s.get("network"),
                s.get("mac"),
                s.get("mtu"),
                "up" if s.get("link_up") else "down",
                s.get("mode"),
                s.get("server") if s.get("connected") else "disconnected",
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
