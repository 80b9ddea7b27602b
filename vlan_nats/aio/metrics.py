"""Prometheus metrics (``up --metrics-listen ADDR:PORT``; the hub's are
aio/hubmetrics.py, served by the same serve()).

A small HTTP server on the daemon's own event loop: each scrape of
``/metrics`` builds the metric families from the daemon's Status at that
moment, on the loop, so nothing is read while the data path changes it.
prometheus-client formats them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ..core.counters import DropReason
from ..core.status import Status

log = logging.getLogger(__name__)

MAX_REQUEST_HEAD = 8192


class _PerScrape:
    """A collector whose families ``families()`` builds at each scrape."""

    def __init__(self, families: Callable[[], Iterator[object]]) -> None:
        self._families = families

    def describe(self) -> list[object]:
        return []  # built per scrape

    def collect(self) -> Iterator[object]:
        return self._families()


def registry(families: Callable[[], Iterator[object]]) -> CollectorRegistry:
    """A registry of families built at each scrape (the daemon's below, the
    hub's in hubmetrics.py)."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(_PerScrape(families))  # type: ignore[arg-type]
    return reg


def _families(st: Status) -> Iterator[object]:
    yield from _identity(st)
    yield from _traffic(st)
    yield from _nats(st)
    yield from _problems(st)
    yield from _stall(st)
    yield from _priority(st)
    yield from _network(st)
    yield from _switching(st)
    yield from _device(st)


def _identity(st: Status) -> Iterator[object]:
    info = InfoMetricFamily("vlan_nats", "This daemon")
    info.add_metric(
        [],
        {
            "version": str(st.version),
            "dev": str(st.dev),
            "network": str(st.network),
            "mode": str(st.mode),
            "datapath": str(st.dataplane),
            "mac": str(st.mac),
            "node_id": str(st.node_id),
        },
    )
    yield info


def _traffic(st: Status) -> Iterator[object]:
    c = st.counters
    frames = CounterMetricFamily(
        "vlan_nats_frames",
        "Ethernet frames carried, by direction and kind",
        labels=["direction", "kind"],
    )
    nbytes = CounterMetricFamily(
        "vlan_nats_frame_bytes",
        "Ethernet bytes carried, by direction and kind",
        labels=["direction", "kind"],
    )
    for direction, key in (("out", "tx"), ("in", "rx")):
        for kind, n in c[f"{key}_by_kind"].items():
            frames.add_metric([direction, kind], n)
        for kind, n in c[f"{key}_bytes_by_kind"].items():
            nbytes.add_metric([direction, kind], n)
    yield frames
    yield nbytes
    drops = CounterMetricFamily("vlan_nats_drops", "Frames dropped, by reason", labels=["reason"])
    for r in DropReason:  # every reason, zeros too: stable series
        name = r.name.lower()
        drops.add_metric([name], c["drops"].get(name, 0))
    yield drops


def _flag(name: str, doc: str, label: str, value: str | None) -> GaugeMetricFamily:
    """A problem as a gauge: one series at 1, labelled with what it is, or none."""
    g = GaugeMetricFamily(name, doc, labels=[label])
    if value:
        g.add_metric([value], 1)
    return g


def _each(name: str, doc: str, label: str, values: list[str]) -> GaugeMetricFamily:
    """A gauge at 1 for each value (none: no series)."""
    g = GaugeMetricFamily(name, doc, labels=[label])
    for value in values:
        g.add_metric([value], 1)
    return g


def _nats(st: Status) -> Iterator[object]:
    c = st.counters
    yield GaugeMetricFamily(
        "vlan_nats_nats_connected",
        "1 while connected to a NATS server",
        value=1 if st.connected else 0,
    )
    yield _flag(
        "vlan_nats_nats_error",
        "1 for the last NATS connection error since the last successful connect",
        "error",
        st.nats_error,
    )
    data = st.data_connection  # the C datapath's own connection
    if data is not None:
        yield GaugeMetricFamily(
            "vlan_nats_data_connected",
            "1 while the C datapath's data connection is up",
            value=1 if data.get("connected") else 0,
        )
        yield _flag(
            "vlan_nats_data_error",
            "1 for the data connection's last error since it last connected",
            "error",
            data.get("error"),
        )
    yield CounterMetricFamily(
        "vlan_nats_nats_reconnects", "Reconnections to NATS", value=c["nats_reconnects"]
    )
    yield CounterMetricFamily(
        "vlan_nats_nats_disconnects", "Lost NATS connections", value=c["nats_disconnects"]
    )


def _problems(st: Status) -> Iterator[object]:
    """What Status.problems() says, as gauges (the NATS ones are in _nats)."""
    yield GaugeMetricFamily(
        "vlan_nats_duplicate_mac",
        "1 while another node was seen using our MAC (within the last 5 minutes)",
        value=1 if st.duplicate_mac else 0,
    )
    yield _each(
        "vlan_nats_duplicate_address",
        "1 for each of our IPv4 addresses that another node holds too",
        "address",
        sorted({str(d.get("address")) for d in st.duplicate_addresses}),
    )
    mtu = GaugeMetricFamily(
        "vlan_nats_mtu_problem",
        "Other nodes whose MTU differs from ours, by how it shows: too_big_from (we drop "
        "their frames), too_big_for (they drop ours), differs (their MTU in peers)",
        labels=["kind"],
    )
    for kind in ("too_big_from", "too_big_for", "differs"):
        mtu.add_metric([kind], sum(1 for p in st.mtu_problems if p.get("kind") == kind))
    yield mtu
    yield _each(
        "vlan_nats_restart_needed",
        "1 for each setting changed in the config file that takes a restart",
        "setting",
        [change.split(" ", 1)[0] for change in st.restart_needed],
    )
    yield GaugeMetricFamily(
        "vlan_nats_alone",
        "1 while no frame came from the network and no other node answered since start",
        value=1 if st.alone else 0,
    )
    yield _flag(
        "vlan_nats_foreign_bridge",
        "1: the TAP is a port of this bridge but the daemon runs without --bridge",
        "bridge",
        st.foreign_bridge,
    )
    yield _flag(
        "vlan_nats_address_problem",
        "1 while --address auto has no address, or its renewal fails: why",
        "problem",
        st.address_problem,
    )
    yield GaugeMetricFamily(
        "vlan_nats_leased_addresses",
        "Addresses held from the address service (--address auto)",
        value=len(st.leases),
    )


def _stall(st: Status) -> Iterator[object]:
    """Stalls of the daemon and frames left unread at the TAP (aio/stall.py)."""
    stall = st.stall or {}
    yield CounterMetricFamily(
        "vlan_nats_stalls",
        "Times this daemon did not run for seconds (process stopped, VM paused, no CPU)",
        value=stall.get("stalls", 0),
    )
    yield CounterMetricFamily(
        "vlan_nats_stalled_seconds", "Seconds this daemon did not run, in all its stalls",
        value=stall.get("stalled_s", 0.0),
    )
    yield CounterMetricFamily(
        "vlan_nats_tap_unread_drops",
        "Frames the kernel dropped at the TAP because the datapath did not read them (queue full)",
        value=stall.get("tap_dropped", 0),
    )
    yield GaugeMetricFamily(
        "vlan_nats_stall_problem",
        "1 while a recent stall or unread TAP frames are a problem (status says what)",
        value=1 if st.stall_problems else 0,
    )


def _priority(st: Status) -> Iterator[object]:
    """--datapath-nice as the datapath's thread got it (aio/priority.py)."""
    nice = st.datapath_nice or {}
    yield GaugeMetricFamily(
        "vlan_nats_datapath_nice",
        "The nice value the thread that moves frames runs at (--datapath-nice)",
        value=nice.get("nice", 0),
    )
    yield _flag(
        "vlan_nats_datapath_priority_problem",
        "1 while the datapath's thread could not take the --datapath-nice value: why",
        "error",
        nice.get("error"),
    )


def _network(st: Status) -> Iterator[object]:
    """The network's definition as this node applies it."""
    yield GaugeMetricFamily(
        "vlan_nats_network_revision",
        "The revision of the network's definition applied (0: none)",
        value=st.network_revision or 0,
    )
    yield _each(
        "vlan_nats_network_problem",
        "1 for each kind of problem with the network's definition here: override (a local "
        "value wins), refused, unreadable, no_watch (read every 5 s), mtu_by_hand, no_key "
        "(sealed, no --key-file)",
        "kind",
        sorted({str(p.get("kind")) for p in st.network_problems}),
    )


def _switching(st: Status) -> Iterator[object]:
    c = st.counters
    arp = CounterMetricFamily(
        "vlan_nats_arp_sent",
        "ARP frames sent: routed to their target's subject, or to broadcast",
        labels=["how"],
    )
    arp.add_metric(["routed"], c.get("arp_routed", 0))
    arp.add_metric(["broadcast"], c.get("arp_broadcast", 0))
    yield arp
    yield GaugeMetricFamily(
        "vlan_nats_learned_macs",
        "MACs learned behind the bridge (bridge mode)",
        value=st.learned_macs,
    )
    yield GaugeMetricFamily(
        "vlan_nats_peers",
        "Remote MACs heard from within the MAC ageing time",
        value=st.remote_macs,
    )
    yield GaugeMetricFamily(
        "vlan_nats_multicast_groups",
        "Multicast groups subscribed",
        value=len(st.multicast_groups),
    )


def _device(st: Status) -> Iterator[object]:
    yield GaugeMetricFamily(
        "vlan_nats_link_up", "1 while the TAP is up", value=1 if st.link_up else 0
    )
    off = GaugeMetricFamily(
        "vlan_nats_offload", "Offloads negotiated on the TAP (1 = on)", labels=["offload"]
    )
    for name in st.offloads:
        off.add_metric([name], 1)
    yield off
    sealing = st.sealing
    yield GaugeMetricFamily(
        "vlan_nats_sealed", "1 when frames are sealed (--key-file)", value=1 if sealing else 0
    )
    if sealing:
        yield GaugeMetricFamily(
            "vlan_nats_seal_sessions",
            "Sender sessions being tracked for replay",
            value=sealing["sessions"],
        )


def registry_for(status: Callable[[], Status]) -> CollectorRegistry:
    return registry(lambda: _families(status()))


async def serve(host: str, port: int, reg: CollectorRegistry) -> asyncio.Server:
    """Serve GET /metrics (the daemon's: registry_for; the hub's:
    hubmetrics.py); anything else is a 404."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(
            OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError
        ):
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            parts = head[:MAX_REQUEST_HEAD].split(b" ", 2)
            path = parts[1].split(b"?")[0] if len(parts) > 1 else b""
            if parts[0] == b"GET" and path in (b"/metrics", b"/"):
                body = generate_latest(reg)
                status_line, ctype = b"200 OK", CONTENT_TYPE_LATEST.encode()
            else:
                body, status_line, ctype = (
                    b"not found: try /metrics\n",
                    b"404 Not Found",
                    b"text/plain",
                )
            writer.write(
                b"HTTP/1.1 "
                + status_line
                + b"\r\nContent-Type: "
                + ctype
                + b"\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\nConnection: close\r\n\r\n"
                + body
            )
            await writer.drain()
        writer.close()

    return await asyncio.start_server(answer, host, port, limit=MAX_REQUEST_HEAD)
