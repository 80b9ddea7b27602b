"""Duplicate IPv4 addresses (core/addrclaim.py, aio/dupaddr.py): two nodes
given one address both name the other, in the log, status and metrics,
within seconds, at start and later (`ip addr add`)."""

import subprocess
import sys
import urllib.request

import pytest

from vlan_nats.lab.checks import wait_until
from vlan_nats.lab.hosts import Lab, free_port

from .conftest import require_root


@pytest.fixture(scope="module")
def lab():
    require_root()
    with Lab(2, tag="vnd") as lab:
        yield lab


def others(node):
    return {(d["address"], d["dev"], d["mac"]) for d in node.status()["duplicate_addresses"]}


def test_an_address_added_twice_is_named_by_both_nodes(lab):
    h1, h2 = lab.nodes
    h2.ns.run("ip", "addr", "add", h1.address, "dev", h2.dev)
    try:
        assert wait_until(lambda: others(h2) == {(h1.ip, h1.dev, h1.mac())}, 5), others(h2)
        assert wait_until(lambda: others(h1) == {(h1.ip, h2.dev, h2.mac())}, 5), others(h1)
        for me, other in ((h1, h2), (h2, h1)):
            line = next(x for x in me.lines if "duplicate address" in x)
            assert " ERROR " in line and f"address={h1.ip}" in line, line
            assert f"dev={other.dev}" in line and f"mac={other.mac()}" in line, line
        r = subprocess.run([sys.executable, "-m", "vlan_nats", "status", "--dev", h1.dev],
                           capture_output=True, text=True, timeout=30)  # fmt: skip
        assert r.returncode == 3, r.stdout + r.stderr
        assert f"duplicate address {h1.ip}: also held by" in r.stdout and h2.dev in r.stdout
    finally:
        h2.ns.run("ip", "addr", "del", h1.address, "dev", h2.dev)
    # The node that gave the address up forgets at once.
    assert wait_until(lambda: others(h2) == set(), 3), others(h2)


def test_a_node_started_with_a_taken_address_says_so_at_start(lab):
    h1 = lab.nodes[0]
    port = free_port()
    h3 = lab.add_node(
        3, extra=["--address", h1.address, "--metrics-listen", f"127.0.0.1:{port}"]
    )
    try:
        assert wait_until(lambda: others(h3) == {(h1.ip, h1.dev, h1.mac())}, 5), h3.lines[-5:]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            metrics = resp.read().decode()
        assert f'vlan_nats_duplicate_address{{address="{h1.ip}"}} 1.0' in metrics
        assert wait_until(lambda: (h1.ip, h3.dev, h3.mac()) in others(h1), 5), others(h1)
    finally:
        h3.stop()
