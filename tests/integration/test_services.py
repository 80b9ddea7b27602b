"""The nodes and the address service as ADR-32 services (aio/services.py),
seen by a client we did not write: the official JavaScript client's
services client (tests/js, ``nats`` from the npm registry, run with the
machine's Node.js).  And ``peers`` across releases: a node of the release
before still answers it.  Needs root (namespaces)."""

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import nats

from vlan_nats import __version__
from vlan_nats.aio.ctlplane import ask_all
from vlan_nats.lab.checks import wait_ping
from vlan_nats.lab.hosts import Lab, unique_prefix

from .helpers import ExternalServer, running_hub

ROOT = Path(__file__).resolve().parents[2]
JS = ROOT / "tests" / "js"
# The last commit before the nodes became ADR-32 services.
PREVIOUS = "bf797843de08b2cbb4817d9b0f26ae5fececdc3c"


def js_services(url: str, token: str, *names: str) -> dict:
    r = subprocess.run(
        ["node", str(JS / "services.mjs"), url, *names],
        env={**os.environ, "NATS_TOKEN": token}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_the_official_javascript_client_lists_pings_and_reads_stats(tmp_path):
    """A hub with its address service and three daemons (both datapaths)."""
    token = unique_prefix("tok")
    tok = tmp_path / "token"
    tok.write_text(token)
    tok.chmod(0o600)
    with running_hub("--store", str(tmp_path / "store"), "--token-file", str(tok),
                     "--ipam", "0=198.18.12.0/24") as (port, _):  # fmt: skip
        server = ExternalServer(port=port)
        with Lab(0, tag="vns", server=server, node_args=["--token-file", str(tok)]) as lab:
            for i, dp in ((1, "c"), (2, "python"), (3, "c")):
                lab.add_node(i, extra=["--address", "auto", "--dataplane", dp])
            for node in lab.nodes:
                node.wait_lease()
            statuses = [node.status() for node in lab.nodes]
            got = js_services(server.url, token, "vlan-nats-node", "vlan-nats-ipam")
    print(json.dumps(got["ping"], indent=1))  # for the closing note

    pinged = sorted(p["name"] for p in got["ping"])
    assert pinged == ["vlan-nats-ipam"] + ["vlan-nats-node"] * 3, got["ping"]
    assert all(p["version"] == __version__ for p in got["ping"])

    nodes = {i["metadata"]["dev"]: i for i in got["info"]["vlan-nats-node"]}
    assert sorted(nodes) == sorted(n.dev for n in lab.nodes)
    for node, status in zip(lab.nodes, statuses, strict=True):
        info = nodes[node.dev]
        meta = info["metadata"]
        assert meta["netns"] == node.ns.name and meta["network"] == "0"
        assert meta["mac"] == status["mac"] and meta["version"] == __version__
        assert meta["datapath"] == ("python" if node is lab.nodes[1] else "c")
        assert {e["name"]: e["subject"] for e in info["endpoints"]} == {
            "peers": "vlan.0.ctl.peers",
            "ping": f"vlan.0.ctl.node.{meta['node_id']}.ping",
        }
    (service,) = got["info"]["vlan-nats-ipam"]
    (lease,) = [e for e in service["endpoints"] if e["name"] == "lease"]
    assert (lease["subject"], lease["queue_group"]) == ("vlan.0.ctl.ipam", "ipam")

    (stats,) = got["stats"]["vlan-nats-ipam"]
    (lease,) = [e for e in stats["endpoints"] if e["name"] == "lease"]
    assert lease["num_requests"] >= 3 and lease["data"]["granted"] == 3, lease
    assert lease["data"]["pool"].startswith("198.18.12.0/24"), lease
    asked = 0
    for s in got["stats"]["vlan-nats-node"]:
        (peers,) = [e for e in s["endpoints"] if e["name"] == "peers"]
        assert {"tap_rx_frames", "tap_tx_frames", "drops"} <= set(peers["data"]), peers
        asked += peers["num_requests"]
    assert asked >= 3  # each node looks the others up at start: 0 + 1 + 2


def previous_release(tmp_path: Path) -> Path:
    """The package as it was at PREVIOUS (pure Python: its python
    datapath, with its python fast path)."""
    out = tmp_path / "previous"
    out.mkdir()
    tar = subprocess.run(
        ["git", "-C", str(ROOT), "archive", PREVIOUS, "vlan_nats"], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(out)], input=tar, check=True)
    return out


def test_peers_lists_a_node_of_the_previous_release(tmp_path):
    old = previous_release(tmp_path)
    with Lab(0, tag="vns") as lab:
        new = lab.add_node(1)
        prev = lab.add_node(2, extra=["--dataplane", "python"], start=False)
        # From its own directory: python -m puts the working directory first.
        prev.launcher = ["env", "-C", str(old), f"PYTHONPATH={old}", "VLAN_NATS_FASTPATH=python"]
        prev.start()
        assert wait_ping(new.ns, prev.ip).received
        r = subprocess.run(
            [sys.executable, "-m", "vlan_nats", "peers", "--server", lab.server.url, "--json"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert sorted(p["dev"] for p in json.loads(r.stdout)) == sorted([new.dev, prev.dev])

        async def services() -> list[bytes]:
            nc = await nats.connect(lab.server.url)
            try:
                return await ask_all(nc, "$SRV.PING.vlan-nats-node", b"", 1.0)
            finally:
                await nc.close()

        # Only the new node is a service: the old one is what it was.
        (answer,) = asyncio.run(services())
        assert json.loads(answer)["metadata"]["dev"] == new.dev
