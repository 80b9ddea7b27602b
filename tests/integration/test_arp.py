"""Routed ARP (core/arp.py) on both datapaths: a request reaches its target's
owner only; announcements, probes, moved addresses, a node that does not
route ARP, and DHCP (a broadcast service) all still work."""

import os
import subprocess
import sys
import tempfile
import time

import pytest

from vlan_nats.lab.arpwatch import ArpWatch
from vlan_nats.lab.checks import ping, wait_until
from vlan_nats.lab.hosts import Lab

from .conftest import require_root


@pytest.fixture(scope="module")
def lab(dataplane):
    require_root()
    with Lab(3, tag="vna", dataplane=dataplane) as lab:
        yield lab


def flush(*nodes) -> None:
    for n in nodes:
        n.ns.run("ip", "neigh", "flush", "dev", n.dev)


def arp_counters(node) -> tuple[int, int]:
    c = node.status()["counters"]
    return c["arp_routed"], c["arp_broadcast"]


def test_request_reaches_only_its_target(lab):
    h1, h2, h3 = lab.nodes
    flush(*lab.nodes)
    routed, _ = arp_counters(h1)
    with ArpWatch(h2.ns, h2.dev) as w2, ArpWatch(h3.ns, h3.dev) as w3:
        r = ping(h1.ns, h2.ip, count=2)
        assert r.ok, r.output
        assert wait_until(lambda: w2.requests_for(h2.ip))
        # The same request, had it been broadcast, would be on h3's TAP by
        # now: it reached h2 first through the same server.
        assert w3.requests_for(h2.ip) == []
    assert arp_counters(h1)[0] > routed
    assert h2.mac() in h1.ns.run("ip", "neigh", "show", h2.ip, "dev", h1.dev).stdout


def test_gratuitous_arp_reaches_everyone(lab, command):
    h1, h2, h3 = lab.nodes
    arping = command("arping", "scripts/test.sh")
    with ArpWatch(h2.ns, h2.dev) as w2, ArpWatch(h3.ns, h3.dev) as w3:
        h1.ns.run(arping, "-U", "-c", "1", "-I", h1.dev, h1.ip, check=False)
        for w in (w2, w3):
            assert wait_until(lambda w=w: any(s.gratuitous for s in w.requests_for(h1.ip)))


def test_arping_probe_finds_the_owner(lab, command):
    """Duplicate-address detection: a probe (sender 0.0.0.0) is answered."""
    _, h2, h3 = lab.nodes
    arping = command("arping", "scripts/test.sh")
    r = h3.ns.run(arping, "-D", "-c", "2", "-w", "3", "-I", h3.dev, h2.ip, check=False)
    assert r.returncode == 1, r.stdout + r.stderr  # 1: a reply, the address is in use
    assert h2.mac().upper() in r.stdout.upper(), r.stdout
    free = "198.18.0.250"
    r = h3.ns.run(arping, "-D", "-c", "1", "-w", "2", "-I", h3.dev, free, check=False)
    assert r.returncode == 0, r.stdout + r.stderr  # nobody owns it


def test_moved_address_is_reachable_at_once(lab, command):
    """Removed on h2, added on h3 and announced: h1 reaches it at h3."""
    h1, h2, h3 = lab.nodes
    arping = command("arping", "scripts/test.sh")
    moved = "198.18.0.20"
    h2.ns.run("ip", "addr", "add", f"{moved}/24", "dev", h2.dev)
    try:
        # h1's cache: moved -> h2.  (Right after `ip addr add` h2's ARP
        # subject may not be subscribed yet: then the repeat finds it.)
        assert ping(h1.ns, moved, count=1, deadline=3).received
        h2.ns.run("ip", "addr", "del", f"{moved}/24", "dev", h2.dev)
        h3.ns.run("ip", "addr", "add", f"{moved}/24", "dev", h3.dev)
        # Past the kernel's locktime (1 s), so that h1 takes the update.
        time.sleep(1.1)
        start = time.monotonic()
        h3.ns.run(arping, "-U", "-c", "1", "-I", h3.dev, moved, check=False)
        r = ping(h1.ns, moved, count=1, deadline=3)
        took = time.monotonic() - start
        assert r.received, r.output
        assert took < 1.5, took
        assert h3.mac() in h1.ns.run("ip", "neigh", "show", moved, "dev", h1.dev).stdout
    finally:
        for n in (h2, h3):
            n.ns.run("ip", "addr", "del", f"{moved}/24", "dev", n.dev, check=False)


def test_dhcp_over_the_lan(lab, command):
    """A DHCP server (dnsmasq) on h1 gives h3 an address: broadcast services work."""
    h1, _, h3 = lab.nodes
    dnsmasq = command("dnsmasq", "scripts/test.sh")
    client = os.path.join(os.path.dirname(sys.executable), "pyroute2-dhcp-client")
    with tempfile.TemporaryDirectory(prefix="vlan-nats-dhcp-") as tmp:
        server = h1.ns.popen(
            dnsmasq, "--no-daemon", "--port=0", f"--interface={h1.dev}", "--bind-interfaces",
            "--dhcp-range=198.18.0.100,198.18.0.109,255.255.255.0,120",
            f"--dhcp-leasefile={tmp}/leases", "--pid-file=", "--conf-file=/dev/null", "--no-ping",
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        dhcp = h3.ns.popen(
            client, "--log-level", "WARNING", h3.dev, cwd=tmp,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            got = wait_until(
                lambda: "198.18.0.10" in h3.ns.run("ip", "-4", "addr", "show", h3.dev).stdout,
                timeout=20,
            )
            assert got, h3.ns.run("ip", "-4", "addr", "show", h3.dev).stdout
        finally:
            for p in (dhcp, server):
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            out = h3.ns.run("ip", "-4", "-o", "addr", "show", h3.dev).stdout
            for word in out.split():
                if word.startswith("198.18.0.10"):
                    h3.ns.run("ip", "addr", "del", word, "dev", h3.dev, check=False)


def test_mixed_lan_with_a_node_that_does_not_route(lab):
    """h4 runs --no-arp-routing (as earlier releases): it listens to no ARP
    subject, so h1's routed request goes unanswered and the kernel's repeat,
    a second later, goes to broadcast.  Both directions resolve."""
    h1, h2, _ = lab.nodes
    h4 = lab.add_node(4, extra=["--no-arp-routing"])
    flush(h1, h2, h4)
    _, bcast = arp_counters(h1)
    # Echo requests sent while ARP resolves may be dropped by the kernel's
    # queue: what counts is the answer, about a second after the first try.
    r = ping(h1.ns, h4.ip, count=1, deadline=4)
    assert r.received and r.avg_ms is not None and r.avg_ms < 2500, r.output
    assert arp_counters(h1)[1] > bcast  # the repeat went to broadcast
    r = ping(h4.ns, h2.ip, count=1, deadline=4)
    assert r.received, r.output
    assert arp_counters(h4) == (0, arp_counters(h4)[1])  # h4 routes nothing
