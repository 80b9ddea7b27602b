"""The status of one daemon: one typed value for ``status``, the status
socket, metrics, ``top`` and (through NodeInfo) ``peers``.

Its JSON encoding (``to_json``) is what ``vlan-nats status --json`` prints
and the status socket serves; ``FORMAT`` is its version, documented in
docs/status.md.  ``from_json`` reads any version: fields it does not know
are ignored, fields a document lacks take their defaults.  Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

FORMAT = 1


@dataclass(frozen=True, slots=True)
class Status:
    node_id: str = ""
    dev: str = ""
    netns: str | None = None
    network: str = ""
    mode: str = ""  # native, compat, bridge:<br>
    mac: str = ""
    mtu: int = 0
    link_up: bool | None = None
    server: str = "-"
    connected: bool = False
    nats_error: str | None = None  # the last NATS error since the last connect
    duplicate_mac: dict[str, Any] | None = None  # another node seen with our MAC
    foreign_bridge: str | None = None  # a bridge we are a port of without --bridge
    # Other nodes holding one of our IPv4 addresses (core/addrclaim.py).
    duplicate_addresses: list[dict[str, Any]] = field(default_factory=list)
    # MTU mismatches: kind (too_big_from, too_big_for, differs), node, text.
    mtu_problems: list[dict[str, Any]] = field(default_factory=list)
    # No frame and no other node since start: "no other node on network ...".
    alone: str | None = None
    # Config file changes a reload (SIGHUP) could not apply: "network 7 -> 8".
    restart_needed: list[str] = field(default_factory=list)
    addresses: list[str] = field(default_factory=list)
    subjects: int = 0
    multicast_groups: list[str] = field(default_factory=list)
    learned_macs: int = 0
    remote_macs: int = 0
    offloads: list[str] = field(default_factory=list)
    sealing: dict[str, Any] | None = None  # key, accepting, sessions
    uptime_s: float = 0.0
    version: str = ""  # of vlan-nats
    counters: dict[str, Any] = field(default_factory=dict)  # Counters.snapshot()
    dataplane: str = ""  # c or python
    # The C datapath's own NATS connection: server, connected, error.
    data_connection: dict[str, Any] | None = None
    # --address auto: the leased address(es) (address, source, lease_s,
    # expires_in_s), and why there is none or it is not renewed.
    leases: list[dict[str, Any]] = field(default_factory=list)
    address_problem: str | None = None
    # The network's definition applied (vlan-nats network; None: none), and
    # what is wrong with it here: a local value overriding it, a refused or
    # unreadable definition.
    network_revision: int | None = None
    network_problems: list[dict[str, Any]] = field(default_factory=list)  # kind, text
    # Times the daemon did not run (stopped, paused, no CPU) and frames the
    # kernel dropped at the TAP unread: stalls, stalled_s, tap_dropped,
    # last (seconds, ago_s, cuts, slow_consumer, tap_dropped, text); and
    # what of it is a problem now (aio/stall.py).
    stall: dict[str, Any] | None = None
    stall_problems: list[str] = field(default_factory=list)
    # --datapath-nice: wanted, nice (in effect), error (why not the wanted).
    datapath_nice: dict[str, Any] | None = None
    format: int = FORMAT

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Status:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in doc.items() if k in known})

    @property
    def key(self) -> tuple[str, str]:
        """Daemons are told apart by (netns, dev): one device name may be
        used in several namespaces."""
        return (self.netns or "", self.dev)

    @property
    def drops(self) -> int:
        d = self.counters.get("drops") or {}
        return sum(int(v) for v in d.values()) if isinstance(d, dict) else 0

    def problems(self) -> list[str]:
        """What is wrong with this daemon, in words."""
        out = []
        if not self.connected:
            err = self.nats_error
            out.append(f"not connected to NATS ({err})" if err else "not connected to NATS")
        data = self.data_connection
        if data and not data.get("connected"):
            err = data.get("error")
            out.append(
                f"data connection down ({err}): frames are dropped"
                if err
                else "data connection down: frames are dropped"
            )
        dup = self.duplicate_mac
        if dup:
            names = ", ".join(
                "/".join(str(o[k]) for k in ("hostname", "netns", "dev") if o.get(k))
                + f" ({o.get('node_id')})"
                for o in dup.get("others") or []
                if isinstance(o, dict)
            )
            out.append(
                f"duplicate MAC {dup.get('mac')}: also used by {names or 'another node'}, "
                f"{dup.get('frames')} frames, last {dup.get('last_seen_s_ago')} s ago"
            )
        for d in self.duplicate_addresses:
            where = "/".join(str(d[k]) for k in ("hostname", "netns", "dev") if d.get(k))
            out.append(
                f"duplicate address {d.get('address')}: also held by {where} "
                f"(node {d.get('node_id')}, MAC {d.get('mac')}, {d.get('how')})"
            )
        out += [f"mtu: {p.get('text')}" for p in self.mtu_problems]
        if self.alone:
            out.append(self.alone)
        if self.restart_needed:
            out.append("config changed, needs a restart: " + "; ".join(self.restart_needed))
        if self.address_problem:
            out.append(f"address service: {self.address_problem}")
        out += [f"network: {p.get('text')}" for p in self.network_problems]
        out += self.stall_problems
        if self.datapath_nice and self.datapath_nice.get("error"):
            out.append(f"datapath priority: {self.datapath_nice['error']}")
        if self.foreign_bridge:
            out.append(
                f"a port of bridge {self.foreign_bridge} without --bridge: "
                "hosts behind it are unreachable"
            )
        return out
