"""The daemon's wiring without a device or a server: the parts made from
the config, the datapath factory, the reports read from the parts, and
live changes handed to the right part.  No root."""

import asyncio
import dataclasses
import os
import socket

import pytest

from vlan_nats import cdatapath, config, report, wiring
from vlan_nats.aio import datapath
from vlan_nats.aio.natslink import NatsLink
from vlan_nats.aio.tunnel import Tunnel
from vlan_nats.core.settings import Change
from vlan_nats.daemon import Daemon
from vlan_nats.fastpath import Tap
from vlan_nats.reload import ConfigReload


def parts(cfg, dataplane="python"):
    return wiring.make(cfg, dataplane, ConfigReload(cfg, None, False, lambda c, n: None),
                       lambda: None)  # fmt: skip


def hooks(seen):
    async def new_local(mac):
        seen.append(("new_local", mac))

    return datapath.Hooks(
        on_events=lambda: seen.append("events"),
        on_new_local=new_local,
        on_dup_mac=lambda subject: seen.append(("dup", subject)),
        on_oversize=lambda mac, size: seen.append(("oversize", size)),
    )


def test_status_of_parts_before_anything_runs():
    cfg = config.build(network="7", mac="02:00:00:00:00:07")
    p = parts(cfg)
    st = report.status(p)
    assert (st.network, st.mode, st.dataplane, st.connected) == ("7", "native", "python", False)
    assert st.mac == "02:00:00:00:00:07" and st.server == "-" and st.subjects == 0
    info = report.node_info(p)
    assert info.macs == ["02:00:00:00:00:07"] and info.node_id == p.node_id


def test_bridge_mode_is_named_in_status():
    p = parts(config.build(bridge="br0"))
    assert report.status(p).mode == "bridge:br0"


def test_the_factory_builds_the_python_datapath_with_its_hooks():
    async def body():
        cfg = config.build()
        p = parts(cfg)
        link = NatsLink(cfg.servers, "test", p.counters)
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        seen = []
        try:
            tunnel, sink = datapath.build(
                "python", cfg, Tap(a.fileno(), "fake", True), link,
                (p.scheme, p.forwarder, p.counters), hooks(seen), lambda: None,
            )  # fmt: skip
            assert isinstance(tunnel, Tunnel) and sink is link
            tunnel.start()
            assert link.on_msg == tunnel.on_msg  # frames from NATS go to it
            tunnel._on_events()
            assert seen == ["events"]
            await tunnel.stop()
        finally:
            a.close()
            b.close()

    asyncio.run(body())


@pytest.mark.skipif(not cdatapath.available(), reason="built without libnats")
def test_the_factory_builds_the_c_datapath_on_its_own_connection():
    async def body():
        cfg = config.build()
        p = parts(cfg, "c")
        link = NatsLink(cfg.servers, "test", p.counters)
        r, w = os.pipe()
        try:
            tunnel, sink = datapath.build(
                "c", cfg, Tap(r, "fake", True), link, (p.scheme, p.forwarder, p.counters),
                hooks([]), lambda: wiring.data_connection(cfg),
            )  # fmt: skip
            assert sink is tunnel and sink is not link
            assert tunnel.data_connection()["connected"] is False
            await tunnel.stop()
        finally:
            os.close(r)
            os.close(w)

    asyncio.run(body())


class FakeTunnel:
    def __init__(self):
        self.calls = []

    def set_storm(self, pps):
        self.calls.append(("storm", pps))

    def set_switching(self, ageing, max_macs):
        self.calls.append(("switching", ageing, max_macs))


def test_live_changes_go_to_the_part_that_applies_them():
    cfg = config.build()
    p = parts(cfg)
    p.tunnel = FakeTunnel()
    new = dataclasses.replace(cfg, storm_pps=50.0, max_macs=9)
    wiring.apply(p, Change("storm_pps", cfg.storm_pps, 50.0), new)
    wiring.apply(p, Change("max_macs", cfg.max_macs, 9), new)
    assert p.tunnel.calls == [("storm", 50.0), ("switching", cfg.mac_ageing, 9)]


def test_a_daemon_is_its_parts_until_it_runs():
    d = Daemon(config.build(network="9", dataplane="python"))
    assert d.p.dataplane == "python" and d.dataplane_why == "--dataplane python"
    assert d.status().network == "9" and d.node_info().node_id == d.p.node_id
