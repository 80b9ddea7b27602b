"""Duplicate MACs: never by default on one host, always reported when forced."""

import secrets
import time
import urllib.request

from vlan_nats.lab.checks import ping, wait_ping
from vlan_nats.lab.hosts import Lab, free_port

from .helpers import same_named


def test_one_device_name_in_three_namespaces_gets_three_macs():
    network = str(100 + secrets.randbelow(3900))  # vnats<N> is unique to this run
    with Lab(0, tag="vnd") as lab:
        nodes = same_named(lab, network, 3)
        macs = [n.mac() for n in nodes]
        assert len(set(macs)) == 3, macs
        for a in nodes:
            for b in nodes:
                if a is not b:
                    assert wait_ping(a.ns, b.ip, timeout=5).received >= 1, (a.dev, b.ip)
        assert not any("duplicate MAC" in line for n in nodes for line in n.lines)
        # The MAC is stable: a restart in the same namespace keeps it.
        nodes[1].stop()
        nodes[1].start()
        assert nodes[1].mac() == macs[1]


def wait_for(cond, timeout=10.0, step=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(step)
    return cond()


def test_two_nodes_forced_onto_one_mac_are_reported(dataplane, command):
    mac = "02:5e:00:00:00:42"
    port = free_port()
    with Lab(3, dataplane=dataplane, tag="vnd", start_nodes=False) as lab:
        h1, h2, h3 = lab.nodes
        h2.args += ["--mac", mac, "--metrics-listen", f"127.0.0.1:{port}"]
        h3.args += ["--mac", mac]
        h1.start()
        h2.start()
        h3.start()
        # The later one is told at start-up, at ERROR, naming the other node.
        start_err = [line for line in h3.lines if " ERROR " in line and "duplicate MAC" in line]
        assert start_err, h3.lines[-5:]
        assert f"mac={mac}" in start_err[0] and f"netns={h2.ns.name}" in start_err[0]
        h3_ready = next(i for i, line in enumerate(h3.lines) if " ready " in line)
        assert h3.lines.index(start_err[0]) < h3_ready  # before it takes frames

        # The first one hears frames with its own source MAC: a warning naming
        # the other node, a dup_mac drop (not echo), status and metrics.
        ping(h3.ns, h1.ip, count=2, deadline=3)
        # Routed ARP sends the ping's request to h1 alone: a gratuitous ARP
        # (broadcast) surely reaches h2.
        arping = command("arping", "scripts/test.sh")
        h3.ns.run(arping, "-U", "-c", "1", "-I", h3.dev, h3.ip, check=False)
        warned = wait_for(
            lambda: [
                line
                for line in h2.lines
                if "duplicate MAC" in line and f"netns={h3.ns.name}" in line
            ]
        )
        assert warned and " WARNING " in warned[0], h2.lines[-5:]
        st = h2.status()
        dup = st["duplicate_mac"]
        assert dup["mac"] == mac and dup["frames"] >= 1
        assert [o["netns"] for o in dup["others"]] == [h3.ns.name]
        assert st["counters"]["drops"].get("dup_mac", 0) >= 1
        assert "echo" not in st["counters"]["drops"]
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
        assert b"vlan_nats_duplicate_mac 1.0" in metrics
        assert b'vlan_nats_drops_total{reason="dup_mac"}' in metrics
        # h1 was never involved: nothing to report there.
        assert h1.status()["duplicate_mac"] is None
