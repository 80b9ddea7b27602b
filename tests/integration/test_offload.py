"""Offloads: a TCP flow moves whole GSO super-frames, intact."""

import time

from vlan_nats.lab.checks import ping, transfer
from vlan_nats.lab.hosts import Lab


def test_tcp_moves_gso_frames_intact(lab2):
    h1, h2 = lab2.nodes
    assert any("offloads negotiated=csum,tso4,tso6,tso_ecn" in line for line in h1.lines)
    t = transfer(h1, h2, 30)
    assert t.ok, t
    c = h1.counters()
    assert c["tap_rx_gso_frames"] > 0
    # Super-frames: on average far above the 1514-byte frames of MTU 1500.
    assert c["tap_rx_gso_bytes"] / c["tap_rx_gso_frames"] > 1514 * 4
    # Nothing of the GSO path was refused (a frame the kernel sent before the
    # first NATS connect is a normal, counted "disconnected" drop).
    drops = h2.counters()["drops"]
    assert not {"vnet", "oversize", "runt", "tap_write", "short", "flags"} & drops.keys(), drops


def test_offload_and_no_offload_peers_interoperate(dataplane):
    with Lab(2, dataplane=dataplane, tag="vno", start_nodes=False) as lab:
        h1, h2 = lab.nodes
        h1.start()
        h2.args.append("--no-offload")
        h2.start()
        assert any("offloads negotiated=off" in line for line in h2.lines)
        assert ping(h1.ns, h2.ip).ok
        for src, dst in ((h1, h2), (h2, h1)):
            t = transfer(src, dst, 20)
            assert t.ok, t
        assert h2.counters()["tap_rx_gso_frames"] == 0
        assert h1.counters()["tap_rx_gso_frames"] > 0


def test_jumbo_mtu_with_offloads(lab2):
    h1, h2 = lab2.nodes
    for n in lab2.nodes:
        n.ns.run("ip", "link", "set", "dev", n.dev, "mtu", "9000")
    try:
        # The daemons follow `ip` through netlink: the new frame limit holds
        # once both said so (a frame above a node's limit is its drop).
        deadline = time.monotonic() + 5
        while not all(any("new=9000" in ln for ln in n.lines) for n in lab2.nodes):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert ping(h1.ns, h2.ip, size=8972, dont_fragment=True).ok
        t = transfer(h1, h2, 20)
        assert t.ok, t
    finally:
        for n in lab2.nodes:
            n.ns.run("ip", "link", "set", "dev", n.dev, "mtu", "1500")
