"""The address service (vlan-nats ipam) and ``up --address auto`` against a
real nats-server with JetStream: distinct addresses, sticky leases, an
instance killed, concurrent requests, an exhausted pool."""

import asyncio
import itertools
import json
import signal
import subprocess
import sys
import time
import urllib.request

import nats
import pytest

from vlan_nats.aio import netkv
from vlan_nats.core import ipam
from vlan_nats.core.subjects import SubjectScheme
from vlan_nats.lab.checks import ping
from vlan_nats.lab.hosts import Lab, NatsServer, free_port
from vlan_nats.lab.ipamproc import IpamProcess

from .conftest import require_root

POOL = "198.18.8.0/27"  # 30 addresses: 5 nodes and 20 concurrent requests


@pytest.fixture(scope="module")
def lab(dataplane):
    require_root()
    server = NatsServer(jetstream=True)
    with Lab(0, tag="vni", dataplane=dataplane, server=server) as lab:
        instances = [IpamProcess(server.url, "0", POOL, "--lease", "60") for _ in range(2)]
        try:
            for inst in instances:
                inst.start()
            lab.ipam = instances
            for i in range(1, 5):
                auto_node(lab, i)
            yield lab
        finally:
            for inst in instances:
                inst.stop()


def auto_node(lab, i, network="0", start=True):
    # The daemon's stable MAC (from the namespace): a restart keeps it.
    node = lab.add_node(
        i, extra=["--address", "auto", "--network", network], start=start, derived_mac=True
    )
    return node


def on_device(node) -> str:
    return node.ns.run("ip", "-4", "-o", "addr", "show", "dev", node.dev).stdout


def test_four_nodes_get_distinct_addresses_and_all_pairs_ping(lab):
    addrs = [n.wait_lease() for n in lab.nodes]
    assert len(set(addrs)) == 4, addrs
    for n, a in zip(lab.nodes, addrs, strict=True):
        assert a.endswith("/27") and a.startswith("198.18.8."), a
        assert a in on_device(n)
        assert any("address obtained" in line and a in line for line in n.lines)
    ips = [a.split("/")[0] for a in addrs]
    for (a, _), (_, ip) in itertools.permutations(zip(lab.nodes, ips, strict=True), 2):
        r = ping(a.ns, ip, count=1)
        assert r.ok, r.output


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL])
def test_a_restarted_node_gets_its_address_back(lab, how):
    node = lab.nodes[1]
    before = node.wait_lease()
    node.stop(how)
    if how == signal.SIGTERM:  # a clean stop gives the lease back
        assert any("lease released" in line for line in node.lines), node.lines[-5:]
    node.start()
    assert node.wait_lease() == before


def test_an_instance_killed_another_answers(lab):
    lab.ipam[0].stop(signal.SIGKILL)
    try:
        fifth = auto_node(lab, 5)
        addr = fifth.wait_lease()
        assert addr not in [n.wait_lease() for n in lab.nodes[:4]]
    finally:
        lab.ipam[0].start()


async def _requests(url, n, network="0", mac_base=0x0200000F0000, members=True):
    """``n`` requests at once for made-up MACs, written first as live
    members of the network (as their nodes would) unless ``members`` is
    False."""
    nc = await nats.connect(url)
    try:
        subject = f"vlan.{network}.ctl.ipam"
        macs = [(mac_base + i).to_bytes(6, "big").hex(":") for i in range(n)]
        if members:
            kv = await netkv.members(nc, SubjectScheme("vlan", network))
            for mac in macs:
                doc = {"mac": mac, "host": "x", "last_seen": time.time()}
                await kv.put(mac.replace(":", ""), json.dumps(doc).encode())

        async def one(mac):
            msg = await nc.request(subject, ipam.request("request", mac, "0000abcd", "x"), 5)
            return ipam.parse_reply(msg.data)

        return await asyncio.gather(*(one(mac) for mac in macs))
    finally:
        await nc.close()


def test_twenty_requests_at_once_get_twenty_addresses(lab):
    replies = asyncio.run(_requests(lab.server.url, 20))
    assert all(r is not None and r.ok for r in replies), replies
    got = {r.address for r in replies}
    assert len(got) == 20
    assert not got & {n.wait_lease() for n in lab.nodes}  # none handed out twice


def test_made_up_macs_cannot_empty_the_pool(lab):
    """A client asking for 300 made-up MACs (more than the pool holds) gets
    nothing: new leases go to live members only; it is said and counted,
    and a real node still gets its address."""
    replies = asyncio.run(_requests(lab.server.url, 300, mac_base=0x0200000E0000, members=False))
    assert not any(r.ok for r in replies)
    assert all("not a live member of network 0" in r.error for r in replies), replies[0]
    said = [x for inst in lab.ipam for x in inst.lines if "not a live member" in x]
    assert said and "mac=02:00:00:0e:00:" in said[0], said
    node = auto_node(lab, 11)
    assert node.wait_lease().startswith("198.18.8.")
    node.stop()


def test_an_exhausted_pool_is_said_and_retried(lab):
    """A pool of two, both taken: the next node says so and keeps asking;
    once one is released it gets that one."""
    with IpamProcess(lab.server.url, "full", "198.18.9.0/30") as _:
        replies = asyncio.run(_requests(lab.server.url, 2, network="full"))
        assert all(r.ok for r in replies)
        port = free_port()
        node = lab.add_node(
            6, extra=["--address", "auto", "--network", "full", "--metrics-listen",
                      f"127.0.0.1:{port}"], derived_mac=True,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not any("exhausted" in line for line in node.lines):
            assert time.monotonic() < deadline, "\n".join(node.lines[-10:])
            time.sleep(0.1)
        line = next(line for line in node.lines if "exhausted" in line)
        assert "no address yet" in line and "retrying" in line, line
        assert "exhausted" in (node.status().get("address_problem") or "")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            metrics = resp.read().decode()
        assert 'vlan_nats_address_problem{problem="refused: address pool 198.18.9.0/30' in metrics
        assert "vlan_nats_leased_addresses 0.0" in metrics
        # Release one lease: the node's retry gets it.
        free = replies[0].address.split("/")[0]

        async def release():
            nc = await nats.connect(lab.server.url)
            mac = (0x0200000F0000).to_bytes(6, "big").hex(":")
            await nc.request("vlan.full.ctl.ipam", ipam.request("release", mac, "0000abcd", "x",
                                                                 free), 5)  # fmt: skip
            await nc.close()

        asyncio.run(release())
        assert node.wait_lease(timeout=20).startswith(free + "/")
        node.stop()


def cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "vlan_nats", *args], capture_output=True, text=True, timeout=60
    )


def test_auto_beside_a_static_address_shown_in_peers_and_leases(lab):
    node = lab.add_node(
        7, extra=["--address", "auto", "--address", "198.18.12.7/24"], derived_mac=True
    )
    try:
        leased = node.wait_lease()
        assert leased in on_device(node) and "198.18.12.7/24" in on_device(node)
        r = cli("peers", "--server", lab.server.url)
        line = next(x for x in r.stdout.splitlines() if node.dev in x)
        assert f"{leased} (ipam)" in line and "198.18.12.7/24" in line, r.stdout
        r = cli("leases", "--server", lab.server.url, "--json")
        mine = [le for le in json.loads(r.stdout) if le["mac"] == node.mac()]
        assert [le["address"] + "/27" for le in mine] == [leased], r.stdout
    finally:
        node.stop()


def test_without_jetstream_the_service_says_so_in_one_line():
    with NatsServer() as server:
        for args in (("ipam", "--pool", "198.18.13.0/24"), ("leases",)):
            r = cli(*args, "--server", server.url)
            assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
            assert "has no JetStream" in r.stderr and "-js" in r.stderr, r.stderr


def test_an_address_a_node_holds_statically_is_skipped(lab):
    """The README's own quick start: static addresses inside the pool.  Of a
    two-address range, the one a node holds is never leased."""
    static = lab.add_node(8, extra=["--network", "held", "--address", "198.18.14.1/29"])
    try:
        with IpamProcess(lab.server.url, "held", "198.18.14.0/29", "--range",
                         "198.18.14.1-198.18.14.2") as inst:  # fmt: skip
            replies = asyncio.run(_requests(lab.server.url, 2, network="held"))
            granted = [r.address for r in replies if r.ok]
            assert granted == ["198.18.14.2/29"], replies
            assert any("exhausted" in r.error for r in replies if not r.ok), replies
            skipped = [x for x in inst.lines if "skipped" in x]
            assert skipped and "address=198.18.14.1" in skipped[0], inst.lines[-5:]
            assert f"dev={static.dev}" in skipped[0], skipped
    finally:
        static.stop()


def test_a_second_instance_with_another_pool_is_refused(lab):
    r = cli("ipam", "--server", lab.server.url, "--pool", "198.18.200.0/24")
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    assert f"serves pool {POOL} range" in r.stderr and "198.18.200.0/24" in r.stderr, r.stderr
    r = cli("ipam", "--server", lab.server.url, "--pool", "198.18.110.5/24")
    assert r.returncode == 1 and "host bits set" in r.stderr and "198.18.110.0/24" in r.stderr


def test_an_instance_whose_server_died_stops_cleanly():
    """SIGTERM while the server is away: exit 0 at once, no traceback (its
    services' drains and the connection's close cannot reach the server)."""
    server = NatsServer(jetstream=True).start()
    inst = IpamProcess(server.url, "0", "198.18.14.0/28").start()
    server.close()
    time.sleep(1.0)
    t0 = time.monotonic()
    assert inst.stop(signal.SIGTERM, 20) == 0, inst.lines[-20:]
    assert time.monotonic() - t0 < 5
    assert not any("Traceback" in line for line in inst.lines), inst.lines
