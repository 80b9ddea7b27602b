"""Control plane: peers, ping and status, as a user runs them."""

import json
import subprocess
import sys
import time

import nats
import pytest

from vlan_nats.lab.checks import ping
from vlan_nats.lab.hosts import Lab

from .conftest import require_root


def cli(*args, timeout=30):
    return subprocess.run(
        [sys.executable, "-m", "vlan_nats", *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def lab3c():
    require_root()
    with Lab(3, tag="vnc") as lab:
        yield lab


def test_peers_lists_every_node_with_its_mac(lab3c):
    r = cli("peers", "--server", lab3c.server.url, "--json")
    assert r.returncode == 0, r.stderr
    peers = json.loads(r.stdout)
    assert sorted(p["macs"][0] for p in peers) == sorted(n.mac() for n in lab3c.nodes)
    assert {p["dev"] for p in peers} == {n.dev for n in lab3c.nodes}
    assert all(p["mode"] == "native" and p["network"] == "0" for p in peers)
    table = cli("peers", "--server", lab3c.server.url).stdout
    assert table.splitlines()[0].split()[:4] == ["NODE", "HOST", "NETNS", "DEV"]
    for n in lab3c.nodes:
        assert n.mac() in table


def test_ping_by_mac(lab3c):
    h2 = lab3c.nodes[1]
    r = cli("ping", h2.mac(), "--server", lab3c.server.url, "--count", "2")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("rtt=") == 2 and h2.dev in r.stdout


def test_ping_unknown_target_is_one_line(lab3c):
    r = cli("ping", "02:00:00:00:00:99", "--server", lab3c.server.url)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "no node" in r.stderr


def test_ping_by_address_and_an_ambiguous_hostname(lab3c):
    import socket

    h2 = lab3c.nodes[1]
    r = cli("ping", h2.ip, "--server", lab3c.server.url, "--count", "1")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "rtt=" in r.stdout and h2.dev in r.stdout
    # Three daemons on this host: the hostname names three nodes, listed.
    r = cli("ping", socket.gethostname(), "--server", lab3c.server.url, "--count", "1")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "names 3 nodes" in r.stderr
    assert all(n.dev in r.stderr and n.mac() in r.stderr for n in lab3c.nodes), r.stderr
    assert r.stdout == ""


def test_a_node_alone_on_its_network_says_so(lab3c):
    """`--network Obs` where the LAN is on another network: said after the
    grace time (aio/alone.py), in the log and status; the LAN's nodes are not."""
    from vlan_nats.aio.alone import GRACE
    from vlan_nats.lab.checks import wait_until

    lonely = lab3c.add_node(4, extra=["--network", "Obs"])
    try:
        assert wait_until(lambda: lonely.status()["alone"], GRACE + 5), lonely.lines[-3:]
        assert "no other node on network Obs" in lonely.status()["alone"]
        assert any("no other node on network Obs" in x and " WARNING " in x for x in lonely.lines)
        r = cli("status", "--dev", lonely.dev)
        assert r.returncode == 3 and "no other node on network Obs" in r.stdout, r.stdout
        assert all(n.status()["alone"] is None for n in lab3c.nodes[:3])
    finally:
        lonely.stop()
        lab3c.nodes.remove(lonely)  # the module's other tests see three nodes


def test_sighup_reads_the_config_file_again(lab3c, tmp_path):
    """What can change live is applied and logged; what cannot is named in
    one WARNING and in status until restarted (or the file is put back)."""
    import signal

    from vlan_nats.lab.checks import wait_until

    conf = tmp_path / "node.toml"
    conf.write_text('network = "0"\nstorm_pps = 1000\n')
    node = lab3c.add_node(6, extra=["--config", str(conf)])
    try:
        conf.write_text('network = "lab"\nstorm_pps = 500\nmtu = 9000\n')
        node.proc.send_signal(signal.SIGHUP)
        assert wait_until(lambda: node.status()["mtu"] == 9000, 5), node.lines[-5:]
        assert any("config reload: storm_pps 1000.0 -> 500.0 applied" in x for x in node.lines)
        assert any("config reload: mtu 1500 -> 9000 applied" in x for x in node.lines)
        warn = [x for x in node.lines if "needs a restart" in x]
        assert len(warn) == 1 and " WARNING " in warn[0] and "network 0 -> lab" in warn[0]
        st = node.status()
        assert st["restart_needed"] == ["network 0 -> lab"] and st["network"] == "0"
        r = cli("status", "--dev", node.dev)
        assert r.returncode == 3 and "config changed, needs a restart: network 0 -> lab" in r.stdout
        conf.write_text('network = "0"\nstorm_pps = 500\nmtu = 9000\n')  # put back
        node.proc.send_signal(signal.SIGHUP)
        assert wait_until(lambda: node.status()["restart_needed"] == [], 5), node.lines[-3:]
        conf.write_text("mtu = 0\n")  # a bad file: said, and nothing changes
        node.proc.send_signal(signal.SIGHUP)
        assert wait_until(lambda: any("config reload failed" in x for x in node.lines), 5)
        assert node.proc.poll() is None and node.status()["mtu"] == 9000
    finally:
        node.stop()
        lab3c.nodes.remove(node)


def test_peers_with_no_server_is_one_line():
    r = cli("peers", "--server", "nats://127.0.0.1:1")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "cannot connect" in r.stderr


def test_status_shows_the_local_daemons(lab3c):
    h1, h2 = lab3c.nodes[:2]
    assert ping(h1.ns, h2.ip, count=2).ok
    r = cli("status", "--dev", h1.dev, "--json")
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)[0]
    assert st["mac"] == h1.mac() and st["connected"] and st["link_up"]
    # The pings went out through the TAP and came back through it.
    assert st["counters"]["tap_rx_frames"] >= 2 and st["counters"]["tap_tx_frames"] >= 2
    assert st["nats_error"] is None and st["duplicate_mac"] is None
    assert st["addresses"][0] == h1.address
    table = cli("status").stdout
    for n in lab3c.nodes:
        assert n.dev in table
    r = cli("status", "--dev", "nosuchdev0")
    assert r.returncode == 1 and r.stderr.count("\n") == 1


def test_peers_shows_current_counters(lab3c):
    """On either datapath: drops counted a moment ago are in the peers reply
    (the C datapath's counters are read for it, not only for status)."""
    import asyncio

    h3 = lab3c.nodes[2]

    def drops():
        r = cli("peers", "--server", lab3c.server.url, "--json")
        return next(p for p in json.loads(r.stdout) if p["dev"] == h3.dev)["counters"]["drops"]

    before = drops()

    async def junk():
        nc = await nats.connect(lab3c.server.url)
        for _ in range(3):
            await nc.publish("vlan.0.u." + h3.mac().replace(":", ""), b"\x07")
        await nc.flush()
        await nc.close()

    asyncio.run(junk())
    deadline = time.monotonic() + 5
    while drops() < before + 3:
        assert time.monotonic() < deadline, (before, drops())


def test_malformed_control_requests_get_no_answer_and_no_crash(lab3c):
    import asyncio

    async def hostile():
        nc = await nats.connect(lab3c.server.url)
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox)
        for payload in (b"x" * 5000, b"not json", b"[1,2]", b"\xff" * 10):
            await nc.publish("vlan.0.ctl.peers", payload, reply=inbox)
        await nc.flush()
        got = 0
        try:
            while True:
                await sub.next_msg(timeout=0.5)
                got += 1
        except nats.errors.TimeoutError:
            pass
        await nc.close()
        return got

    assert asyncio.run(hostile()) == 0
    assert all(n.proc.poll() is None for n in lab3c.nodes)
    assert cli("peers", "--server", lab3c.server.url).returncode == 0


def test_status_socket_is_for_root_only(lab3c):
    import os
    import stat

    from vlan_nats.aio import statussock

    node = lab3c.nodes[0]
    path = statussock.socket_path(node.dev, node.ns.name)
    st = os.stat(path)
    assert stat.S_ISSOCK(st.st_mode) and st.st_mode & 0o077 == 0, oct(st.st_mode)  # owner only
    assert st.st_uid == 0


def test_daemons_run_with_ip_netns_exec_have_a_status_socket_each(tmp_path):
    """Three daemons with one --dev, each run inside its own namespace with
    `ip netns exec`: three rows in status; the first to stop removes its
    own socket only."""
    from vlan_nats.lab.checks import wait_until
    from vlan_nats.lab.hosts import Namespace, unique_prefix

    require_root()
    prefix = unique_prefix("vns")
    dev = f"{prefix}d"
    spaces, procs = [], []
    try:
        for i in range(3):
            ns = Namespace(f"{prefix}-{i}")
            spaces.append(ns)
            procs.append(
                ns.popen(
                    sys.executable, "-m", "vlan_nats", "up", "--dev", dev, "--mac", "random",
                    "--server", "nats://127.0.0.1:1", stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )  # fmt: skip
            )

        def rows():
            r = cli("status", "--dev", dev, "--json")
            return sorted(st["netns"] for st in json.loads(r.stdout or "[]"))

        names = sorted(ns.name for ns in spaces)
        assert wait_until(lambda: rows() == names, 15), rows()
        procs[0].terminate()
        assert procs[0].wait(10) == 0
        rest = sorted(ns.name for ns in spaces[1:])
        assert wait_until(lambda: rows() == rest, 5), rows()
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                p.wait(10)
        for ns in spaces:
            ns.delete()


AS_NOBODY = """
import os, sys
from vlan_nats import cli, views
from vlan_nats.aio import ctlplane, statussock  # imported while we may read them
os.setgid(65534)
os.setuid(65534)
sys.exit(cli.main(sys.argv[1:]))
"""


def test_status_and_top_without_root_say_why(lab3c):
    for argv in (["status"], ["top", "--count", "1"]):
        r = subprocess.run(
            [sys.executable, "-c", AS_NOBODY, *argv], capture_output=True, text=True, timeout=30
        )
        assert r.returncode == 1, (argv, r.stdout, r.stderr)
        assert r.stderr.count("\n") == 1, r.stderr
        assert "/run/vlan-nats" in r.stderr and "root" in r.stderr and "sudo" in r.stderr


def test_peers_shows_addresses_and_netns_and_ping_takes_the_node_id(lab3c):
    h1 = lab3c.nodes[0]
    h1.ns.run("ip", "addr", "add", "198.18.9.1/24", "dev", h1.dev)
    try:
        peers = {}
        deadline = time.monotonic() + 5
        while "198.18.9.1/24" not in peers.get(h1.dev, {}).get("addresses", []):
            assert time.monotonic() < deadline, peers
            r = cli("peers", "--server", lab3c.server.url, "--json")
            peers = {p["dev"]: p for p in json.loads(r.stdout)}
        for n in lab3c.nodes:
            assert peers[n.dev]["netns"] == n.ns.name
            assert n.address in peers[n.dev]["addresses"]
        table = cli("peers", "--server", lab3c.server.url).stdout
        assert table.split()[:4] == ["NODE", "HOST", "NETNS", "DEV"]
        assert "198.18.0.1/24,198.18.9.1/24" in table
    finally:
        h1.ns.run("ip", "addr", "del", "198.18.9.1/24", "dev", h1.dev)
    node_id = peers[lab3c.nodes[1].dev]["node_id"]
    r = cli("ping", node_id, "--server", lab3c.server.url, "--count", "1")
    assert r.returncode == 0 and f"({node_id})" in r.stdout and "rtt=" in r.stdout, r.stderr


@pytest.mark.parametrize(
    "argv, words",
    [
        (["peers", "--timeout", "-1"], "--timeout"),
        (["ping", "x", "--count", "0"], "--count"),
        (["top", "--interval", "0"], "--interval"),
        (["peers", "--server", "http//bad"], "http//bad"),
        (["peers", "--network", "-1"], "'-1'"),
        (["up", "--network", "-1"], "'-1'"),
        (["up", "--server", "nats://a b:4222"], "host"),
        (["up", "--storm-pps", "nan"], "--storm-pps"),
    ],
)
def test_bad_numbers_urls_and_networks_are_one_line(argv, words):
    r = cli(*argv)
    assert r.returncode in (1, 2) and r.stderr.count("\n") == 1, r.stderr
    assert words in r.stderr and "Traceback" not in r.stderr


def test_check_config_names_the_line_of_a_bad_url(tmp_path):
    conf = tmp_path / "lab.toml"
    conf.write_text('network = 7\nserver = "http//bad"\n')
    r = cli("check-config", str(conf))
    assert r.returncode == 1 and f"{conf}:2:" in r.stderr and "http//bad" in r.stderr, r.stderr


def test_json_logs_carry_fields_as_members(tmp_path):
    require_root()
    with Lab(1, tag="vnc", node_args=["--log-format", "json"]) as lab:
        h1 = lab.nodes[0]
        ready = [json.loads(x) for x in h1.lines if '"msg": "ready"' in x]
    assert ready, h1.lines[-3:]
    rec = ready[0]
    assert rec["msg"] == "ready" and rec["dev"] == h1.dev and rec["netns"] == h1.ns.name
    assert rec["mac"] == rec["mac"].lower() and rec["level"] == "info"


def test_genkey_dash_writes_to_standard_output(tmp_path):
    import base64

    r = subprocess.run(
        [sys.executable, "-m", "vlan_nats", "genkey", "-"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert r.returncode == 0 and len(base64.b64decode(r.stdout.strip())) == 32
    assert list(tmp_path.iterdir()) == []  # no file named "-"
    key = tmp_path / "k"
    key.write_text(r.stdout)
    from vlan_nats import keys

    assert keys.load_key(str(key)) == base64.b64decode(r.stdout.strip())
