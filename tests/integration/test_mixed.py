"""A LAN that mixes the two datapaths: a node on the C datapath and one on
the python datapath are one Ethernet segment, plain and sealed."""

import pytest

from vlan_nats import cdatapath, keys
from vlan_nats.lab.checks import ping, transfer, wait_ping
from vlan_nats.lab.hosts import Lab

pytestmark = pytest.mark.skipif(
    not cdatapath.available() and __import__("os").environ.get("CI") != "true",
    reason=cdatapath.why_missing() or "C datapath built",
)


def ready_line(node):
    return next(line for line in node.lines if " ready " in line)


@pytest.mark.parametrize("sealed", [False, True], ids=["plain", "sealed"])
def test_c_and_python_nodes_share_one_lan(tmp_path, sealed):
    extra = []
    if sealed:
        key = tmp_path / "lan.key"
        keys.write_new_key(str(key))
        extra = ["--key-file", str(key)]
    with Lab(2, tag="vnx", start_nodes=False) as lab:
        c, py = lab.nodes
        c.args += ["--dataplane", "c", *extra]
        py.args += ["--dataplane", "python", *extra]
        c.start()
        py.start()
        assert "datapath=c" in ready_line(c) and "datapath=python" in ready_line(py)
        wait_ping(c.ns, py.ip)
        for a, b in ((c, py), (py, c)):
            r = ping(a.ns, b.ip, count=5, interval=0.1)
            assert r.ok, r.output
            # As for IPv4 above, the first reply is awaited before loss counts:
            # the first link-local echo from the C node is sometimes lost while
            # neighbour discovery runs (1 run in 4, seen in earlier sessions
            # too; not yet explained).
            target = f"{b.link_local()}%{a.dev}"
            wait_ping(a.ns, target)
            r = ping(a.ns, target, count=2)
            assert r.ok, r.output
        for a, b in ((c, py), (py, c)):
            t = transfer(a, b, 20)  # GSO frames both ways; SHA-256 compared
            assert t.ok, t
        for n in (c, py):
            st = n.status()
            drops = st["counters"]["drops"]
            assert not drops.get("seal_auth") and not drops.get("unsealed"), drops
            if sealed:
                assert st["sealing"]["sessions"] >= 1, st["sealing"]
