"""Reports of a running daemon: its Status (``status``, metrics, ``top``)
and its NodeInfo (the control plane's ``peers`` reply), read from the
parts the daemon wires together (wiring.Parts).  Called on the daemon's
loop."""

from __future__ import annotations

import socket
import time

from . import __version__
from .core.control import NodeInfo
from .core.mac import format_mac
from .core.status import Status
from .wiring import Parts, mode_of


def status(d: Parts) -> Status:
    """What ``vlan-nats status``, the metrics and ``top`` show."""
    cfg, fwd, link, fol = d.cfg, d.forwarder, d.link, d.follower
    if d.tunnel is not None:
        d.tunnel.refresh_counters()
    st = fol.state if fol else None
    now = time.monotonic()
    stall = d.stall.status()
    return Status(
        node_id=d.node_id,
        dev=cfg.dev,
        netns=d.where,
        network=cfg.network,
        mode=mode_of(cfg),
        mac=format_mac(fwd.mac),
        mtu=st.mtu if st else cfg.mtu,
        link_up=st.up if st else None,
        server=link.server if link else "-",
        connected=bool(link and link.is_connected),
        nats_error=link.last_error if link else None,
        duplicate_mac=d.dup.status(),
        duplicate_addresses=d.dupaddr.status(),
        mtu_problems=d.mtuw.problems(),
        alone=d.alone.current(),
        restart_needed=list(d.config_reload.restart_needed),
        foreign_bridge=fol.foreign_master if fol else None,
        addresses=list(fol.addresses) if fol else [],
        subjects=d.tunnel.subject_count() if d.tunnel else 0,
        multicast_groups=sorted(format_mac(g) for g in (fol.subs.groups if fol else ())),
        learned_macs=len(fwd.table.local) - 1 if fwd.bridge else 0,
        # MACs heard from the network within the ageing time (our peers)
        remote_macs=d.tunnel.remote_macs(now) if d.tunnel else 0,
        offloads=[o.lower() for o in d.offloads],
        sealing=d.keys.status(d.tunnel),
        uptime_s=round(now - d.started, 1),
        version=__version__,
        counters=d.counters.snapshot(),
        dataplane=d.dataplane,
        data_connection=d.tunnel.data_connection() if d.tunnel else None,
        leases=d.addr.describe() if d.addr else [],
        address_problem=d.addr.problem if d.addr else None,
        network_revision=d.netwatch.revision,
        network_problems=d.netwatch.problems(),
        stall={k: v for k, v in stall.items() if k != "problems"},
        stall_problems=stall["problems"],
        datapath_nice=d.priority.status(),
    )


def node_info(d: Parts) -> NodeInfo:
    """What this node answers to ``peers``."""
    fwd, st, c = d.forwarder, status(d), d.counters
    learned = [m for m in fwd.table.local if m != fwd.mac][:256] if fwd.bridge else []
    return NodeInfo(
        node_id=d.node_id,
        hostname=socket.gethostname(),
        dev=st.dev,
        macs=[st.mac] + [format_mac(m) for m in learned],
        network=st.network,
        mode=st.mode,
        version=st.version,
        uptime_s=st.uptime_s,
        server=st.server,
        netns=st.netns,
        addresses=st.addresses,
        leased=[le["address"] for le in st.leases],
        mtu=st.mtu,
        counters={
            "tap_rx_frames": c.tap_rx_frames,
            "tap_tx_frames": c.tap_tx_frames,
            "drops": sum(c.drops),
            "nats_reconnects": c.nats_reconnects,
        },
    )
