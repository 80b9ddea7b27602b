"""Control plane: peers, ping and status, as a user runs them."""

import json
import subprocess
import sys

import nats
import pytest

from vlan_nats.lab.hosts import Lab


def cli(*args, timeout=30):
    return subprocess.run(
        [sys.executable, "-m", "vlan_nats", *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def lab3c():
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
    assert table.splitlines()[0].split()[:3] == ["NODE", "HOST", "DEV"]
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


def test_peers_with_no_server_is_one_line():
    r = cli("peers", "--server", "nats://127.0.0.1:1")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "cannot connect" in r.stderr


def test_status_shows_the_local_daemons(lab3c):
    r = cli("status", "--dev", lab3c.nodes[0].dev, "--json")
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)[0]
    assert st["mac"] == lab3c.nodes[0].mac() and st["connected"] and st["link_up"]
    assert st["counters"]["tap_rx_frames"] >= 0
    table = cli("status").stdout
    for n in lab3c.nodes:
        assert n.dev in table
    r = cli("status", "--dev", "nosuchdev0")
    assert r.returncode == 1 and r.stderr.count("\n") == 1


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
