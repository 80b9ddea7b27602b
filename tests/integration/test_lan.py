"""Three hosts on one virtual LAN: reachability, MTU, TCP, no echo, MAC change."""

import itertools
import sys

from vlan_nats.lab.checks import ping, transfer, wait_ping, wait_until


def test_ipv4_all_pairs(lab3):
    for a, b in itertools.permutations(lab3.nodes, 2):
        r = ping(a.ns, b.ip, count=2)
        assert r.ok, r.output


def test_ipv6_link_local(lab3):
    h1, h2, h3 = lab3.nodes
    for n in lab3.nodes:
        n.link_local()
    for a, b in ((h1, h2), (h2, h3), (h3, h1)):
        r = ping(a.ns, f"{b.link_local()}%{a.dev}", count=2)
        assert r.ok, r.output


def test_ipv6_all_nodes_multicast(lab3):
    h1, h2, h3 = lab3.nodes
    r = h1.ns.run("ping", "-6", "-n", "-c", "2", "-w", "5", f"ff02::1%{h1.dev}", check=False)
    for other in (h2, h3):
        assert other.link_local() in r.stdout, r.stdout


def test_full_size_frames_at_mtu_1500(lab3):
    h1, h2, _ = lab3.nodes
    r = ping(h1.ns, h2.ip, count=2, size=1472, dont_fragment=True)
    assert r.ok, r.output


def test_tcp_50mb_checksum(lab3):
    h1, _, h3 = lab3.nodes
    t = transfer(h1, h3, 50)
    assert t.ok, t
    assert t.recv_bytes == 50 << 20


def test_own_broadcasts_are_not_echoed(lab3):
    """Frames a host broadcasts reach the others but never come back to it."""
    h1, h2, _ = lab3.nodes
    mac = bytes.fromhex(h1.mac().replace(":", ""))
    before1, before2 = h1.link_stats(), h2.link_stats()
    n = 50
    code = (
        "import socket,sys\n"
        f"s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW); s.bind(({h1.dev!r},0))\n"
        f"f=b'\\xff'*6+bytes.fromhex({mac.hex()!r})+b'\\x88\\xb5'\n"
        "f+=b'vlan-nats echo test'.ljust(46,b'.')\n"
        f"[s.send(f) for _ in range({n})]\n"
    )
    h1.ns.run(sys.executable, "-c", code)
    assert wait_until(lambda: h2.link_stats()["rx"] - before2["rx"] >= n)
    echoed = h1.link_stats()["rx"] - before1["rx"]
    assert echoed < 5  # at most unrelated ND/ARP chatter, never our 50 frames
    assert h1.counters()["drops"].get("echo", 0) == 0  # no_echo: the server never sent them


def test_runtime_mtu_9000(lab3):
    for n in lab3.nodes:
        n.ns.run("ip", "link", "set", "dev", n.dev, "mtu", "9000")
    try:
        h1, h2, _ = lab3.nodes
        r = ping(h1.ns, h2.ip, count=2, size=8972, dont_fragment=True)
        assert r.ok, r.output
        t = transfer(h2, h1, 10)
        assert t.ok
    finally:
        for n in lab3.nodes:
            n.ns.run("ip", "link", "set", "dev", n.dev, "mtu", "1500")


def test_runtime_mac_change(lab3):
    h1, h2, _ = lab3.nodes
    old = h2.mac()
    new = "02:5e:00:00:0a:02"
    h2.ns.run("ip", "link", "set", "dev", h2.dev, "address", new)
    try:
        h1.ns.run("ip", "neigh", "flush", "dev", h1.dev)
        r = ping(h1.ns, h2.ip, count=2)
        assert r.ok, r.output
        assert new in h1.ns.run("ip", "neigh", "show", "dev", h1.dev).stdout
        assert any(f"mac changed old={old} new={new}" in line for line in h2.lines)
    finally:
        h2.ns.run("ip", "link", "set", "dev", h2.dev, "address", old)
        # Linux announces no MAC change (arp_notify=0): forget the temporary one.
        h1.ns.run("ip", "neigh", "flush", "dev", h1.dev)


def test_link_down_up(lab3):
    h1, h2, _ = lab3.nodes
    h2.ns.run("ip", "link", "set", "dev", h2.dev, "down")
    h2.ns.run("ip", "link", "set", "dev", h2.dev, "up")
    assert wait_ping(h1.ns, h2.ip, timeout=10).received >= 1
    assert any("link down" in line for line in h2.lines)
