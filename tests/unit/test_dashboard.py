"""The Grafana dashboard only queries metrics the daemon serves."""

import json
import re
from pathlib import Path

from vlan_nats.aio.metrics import registry_for

DASH = Path(__file__).resolve().parents[2] / "contrib" / "grafana" / "vlan-nats.json"


def fake_status():
    from vlan_nats.core.counters import Counters
    from vlan_nats.core.status import Status

    return Status.from_json(
        {
            "version": "0",
            "dev": "vn0",
            "network": "0",
            "mode": "native",
            "mac": "02:00:00:00:00:01",
            "node_id": "abcdef01",
            "counters": Counters().snapshot(),
            "connected": True,
            "learned_macs": 0,
            "remote_macs": 2,
            "multicast_groups": ["33:33:00:00:00:01"],
            "link_up": True,
            "offloads": ["tso4"],
            "sealing": {"key": "ab", "accepting": ["ab"], "sessions": 1},
            "nats_error": "timeout",
            "duplicate_mac": {"mac": "02:00:00:00:00:01"},
            "foreign_bridge": "br0",
        }
    )


def test_every_queried_metric_exists():
    from prometheus_client import generate_latest

    served = set(
        re.findall(
            r"^(vlan_nats_\w+?)(?:\{| )", generate_latest(registry_for(fake_status)).decode(), re.M
        )
    )
    dash = json.loads(DASH.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    queried = {m for e in exprs for m in re.findall(r"vlan_nats_\w+", e)}
    assert queried and queried <= served, queried - served
