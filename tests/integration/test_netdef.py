"""The network as one object: its definition in JetStream KV, set with
``vlan-nats network``, applied live by every node, shown whole by
``network show`` (root: namespaces, TAPs; a real nats-server with
JetStream; both datapaths)."""

import asyncio
import json
import signal
import subprocess
import sys
import time

import nats
import pytest

from vlan_nats.core.arp import REPEAT_WINDOW
from vlan_nats.keys import write_new_key
from vlan_nats.lab.arpwatch import ArpWatch
from vlan_nats.lab.checks import ping, wait_until
from vlan_nats.lab.hosts import Lab
from vlan_nats.lab.ipamproc import IpamProcess
from vlan_nats.lab.natsserver import NatsServer

from .conftest import require_root


def cli(lab, *args, check=True):
    r = subprocess.run([sys.executable, "-m", "vlan_nats", "network", *args, "--server",
                        lab.server.url], capture_output=True, text=True, timeout=30)  # fmt: skip
    if check:
        assert r.returncode == 0, r.stderr
    return r


def mtu_of(node) -> int:
    out = node.ns.run("ip", "-o", "link", "show", node.dev).stdout
    return int(out.split(" mtu ")[1].split()[0])


def show(lab, net="0"):
    return json.loads(cli(lab, "show", net, "--json").stdout)


@pytest.fixture
def lab3(dataplane):
    require_root()
    with Lab(3, dataplane=dataplane, tag="vnw", server=NatsServer(jetstream=True)) as lab:
        yield lab


def test_mtu_set_once_reaches_every_node_live(lab3):
    lab = lab3
    h1, h2, h3 = lab.nodes
    assert any("has no definition" in line for line in h1.lines)
    t0 = time.monotonic()
    out = cli(lab, "set", "0", "mtu=9000").stdout
    assert "mtu=9000" in out and "revision" in out
    assert wait_until(lambda: all(mtu_of(n) == 9000 for n in lab.nodes), 2), [
        mtu_of(n) for n in lab.nodes
    ]
    print(f"mtu 9000 on 3 nodes after {time.monotonic() - t0:.2f} s")
    # A jumbo ping with DF set crosses.
    assert ping(h1.ns, h3.ip, count=2, size=8972, dont_fragment=True, deadline=5).ok
    st = h2.status()
    assert st["network_revision"] >= 1 and st["mtu"] == 9000 and st["network_problems"] == []
    assert any("mtu 1500 -> 9000, revision" in line for line in h2.lines)
    # A node started afterwards comes up at the network's MTU.
    h4 = lab.add_node(4)
    assert mtu_of(h4) == 9000
    # Back to 1500 (unset: the nodes' own default).
    cli(lab, "unset", "0", "mtu")
    assert wait_until(lambda: all(mtu_of(n) == 1500 for n in lab.nodes), 2)
    # network show: the definition, the members, no problem.
    view = show(lab)
    assert view["definition"]["revision"] >= 2 and view["definition"]["settings"] == {}
    assert len([m for m in view["members"] if not m["gone"]]) == 4, view["members"]
    assert view["problems"] == []


def test_an_explicit_local_value_wins_and_is_reported(dataplane):
    server = NatsServer(jetstream=True)
    with Lab(2, dataplane=dataplane, tag="vnw", server=server, start_nodes=False) as lab:
        h1, h2 = lab.nodes
        h2.args += ["--mtu", "1500"]
        for n in lab.nodes:
            n.start()
        cli(lab, "set", "0", "mtu=9000", "storm_pps=200")
        assert wait_until(lambda: mtu_of(h1) == 9000, 2)
        assert wait_until(lambda: h2.status()["network_problems"], 2)
        assert mtu_of(h2) == 1500
        said = h2.status()["network_problems"]
        assert said == [{"kind": "override",
                         "text": "local --mtu 1500 overrides the network's 9000"}], said
        assert any(" WARNING " in x and "overrides the network's 9000" in x for x in h2.lines)
        # Everything else of the definition applies to it all the same.
        assert any("storm_pps 1000.0 -> 200.0" in x for x in h2.lines)
        r = subprocess.run([sys.executable, "-m", "vlan_nats", "status", "--dev", h2.dev],
                           capture_output=True, text=True)  # fmt: skip
        assert "overrides the network's 9000" in r.stdout + r.stderr
        # ... and in network show, once its member entry is written again.
        named = f"{h2.dev}: network: local --mtu 1500 overrides the network's 9000"
        assert wait_until(lambda: any(named in p for p in show(lab)["problems"]), 12), show(lab)


def test_bad_values_are_refused_and_the_last_good_one_stays(lab3):
    lab = lab3
    r = cli(lab, "set", "0", "mtu=99999", check=False)
    assert r.returncode == 1 and "bad mtu 99999: must be 68-65535" in r.stderr
    assert "Traceback" not in r.stderr
    cli(lab, "set", "0", "mtu=4000")
    assert wait_until(lambda: all(mtu_of(n) == 4000 for n in lab.nodes), 2)

    async def write_raw():
        nc = await nats.connect(lab.server.url)
        kv = await nc.jetstream().key_value("vlan-nats-net_vlan")
        await kv.put("0", b'{"settings": {"mtu": "huge"}}')
        await nc.close()

    asyncio.run(write_raw())
    for n in lab.nodes:
        assert wait_until(lambda n=n: n.status()["network_problems"], 3), n.dev
        assert "definition refused" in n.status()["network_problems"][0]["text"]
        assert any(" ERROR " in x and "definition refused" in x for x in n.lines)
        assert mtu_of(n) == 4000
    cli(lab, "set", "0", "mtu=1500")  # writes over the bad value
    assert wait_until(lambda: all(mtu_of(n) == 1500 for n in lab.nodes), 2)
    assert wait_until(lambda: not any(n.status()["network_problems"] for n in lab.nodes), 2)


def test_arp_routing_off_live_makes_a_bystander_hear_requests(lab3):
    lab = lab3
    h1, h2, h3 = lab.nodes
    h2_ip = h2.ip

    def bystander_hears() -> int:
        """ARP requests for h2 that reach h3's TAP during one resolution."""
        with ArpWatch(h3.ns, h3.dev) as watch:
            h1.ns.run("ip", "neigh", "flush", "all")
            assert ping(h1.ns, h2_ip, count=1).ok
            time.sleep(0.3)  # a broadcast copy would be in h3's TAP by now
            return len(watch.requests_for(h2_ip))

    assert bystander_hears() == 0  # routed ARP: only h2 is asked
    cli(lab, "set", "0", "arp_routing=false")
    assert wait_until(lambda: all(n.status()["network_revision"] == 1 for n in lab.nodes), 2)
    assert bystander_hears() >= 1  # a broadcast now
    cli(lab, "set", "0", "arp_routing=true")  # set back: it stops
    assert wait_until(lambda: all(n.status()["network_revision"] == 2 for n in lab.nodes), 2)
    time.sleep(REPEAT_WINDOW)  # a request repeated this soon would go to broadcast
    assert bystander_hears() == 0


def test_members_a_killed_node_is_gone_a_stopped_one_leaves(lab3):
    lab = lab3
    h1, h2, h3 = lab.nodes
    assert wait_until(lambda: len(show(lab)["members"]) == 3, 8)
    h3.proc.send_signal(signal.SIGKILL)
    h3.proc.wait(5)
    t0 = time.monotonic()
    assert wait_until(lambda: any(m["gone"] for m in show(lab)["members"]), 20)
    print(f"killed node marked gone after {time.monotonic() - t0:.1f} s")
    assert time.monotonic() - t0 <= 16
    assert any("gone" in p for p in show(lab)["problems"])
    h2.stop()
    assert wait_until(lambda: len(show(lab)["members"]) == 2, 3)


def test_the_address_service_serves_and_follows_the_definitions_pool(dataplane):
    require_root()
    server = NatsServer(jetstream=True)
    with Lab(0, dataplane=dataplane, tag="vnw", server=server) as lab:
        argv = [sys.executable, "-m", "vlan_nats", "ipam", "--server", lab.server.url]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        assert r.returncode == 1 and "has no address pool" in r.stderr, r.stderr
        cli(lab, "set", "0", "pool=198.18.40.0/29")
        with IpamProcess(lab.server.url, "0", None, "--lease", "10") as service:
            node = lab.add_node(1, extra=["--address", "auto"])
            assert node.wait_lease().startswith("198.18.40."), node.address
            cli(lab, "set", "0", "pool=198.18.41.0/29")
            assert wait_until(lambda: any("address pool changed" in x for x in service.lines), 3)
            # Renewed at half the lease: outside the new pool, so a new address.
            moved = lambda: node.status()["leases"][0]["address"].startswith("198.18.41.")  # noqa: E731
            assert wait_until(moved, 15), node.status()["leases"]


def test_sealed_live_stops_a_node_without_a_key(tmp_path, dataplane):
    require_root()
    key = tmp_path / "lab.key"
    write_new_key(str(key))
    server = NatsServer(jetstream=True)
    with Lab(3, dataplane=dataplane, tag="vnw", server=server, start_nodes=False) as lab:
        h1, h2, h3 = lab.nodes
        for n in (h1, h2):
            n.args += ["--key-file", str(key)]
        for n in lab.nodes:
            n.start()
        cli(lab, "set", "0", "sealed=true")
        assert wait_until(lambda: h3.status()["network_problems"], 2)
        assert h3.status()["network_problems"][0]["kind"] == "no_key"
        assert any(" ERROR " in x and "forwards no frame" in x for x in h3.lines)
        assert not ping(h3.ns, h1.ip, count=2, deadline=2).ok
        assert h3.status()["counters"]["drops"].get("no_key", 0) > 0
        assert ping(h1.ns, h2.ip, count=2).ok  # the others go on
        assert h1.status()["network_problems"] == []
        cli(lab, "set", "0", "sealed=false")
        assert wait_until(lambda: not h3.status()["network_problems"], 2)
        assert any("forwarding again" in x for x in h3.lines)


def test_a_server_restart_keeps_the_settings_and_the_watch_resumes(lab3):
    lab = lab3
    cli(lab, "set", "0", "mtu=4000")
    assert wait_until(lambda: all(mtu_of(n) == 4000 for n in lab.nodes), 2)
    lab.server.kill()
    h1 = lab.nodes[0]
    # Kept, and said: the definition cannot be read meanwhile.
    assert wait_until(lambda: any(p["kind"] == "unreadable"
                                  for p in h1.status()["network_problems"]), 15)  # fmt: skip
    assert all(mtu_of(n) == 4000 for n in lab.nodes)
    lab.server.start()
    assert wait_until(lambda: not h1.status()["network_problems"], 20), h1.status()
    cli(lab, "set", "0", "mtu=5000")
    assert wait_until(lambda: all(mtu_of(n) == 5000 for n in lab.nodes), 8), [
        mtu_of(n) for n in lab.nodes
    ]


def test_an_mtu_set_by_hand_is_reported_not_undone(lab3):
    lab = lab3
    h1 = lab.nodes[0]
    cli(lab, "set", "0", "mtu=9000")
    assert wait_until(lambda: mtu_of(h1) == 9000, 2)
    h1.ns.run("ip", "link", "set", "dev", h1.dev, "mtu", "1400")
    assert wait_until(lambda: any(p["kind"] == "mtu_by_hand"
                                  for p in h1.status()["network_problems"]), 3)  # fmt: skip
    assert mtu_of(h1) == 1400  # not silently undone
    h1.ns.run("ip", "link", "set", "dev", h1.dev, "mtu", "9000")
    assert wait_until(lambda: not h1.status()["network_problems"], 3)
