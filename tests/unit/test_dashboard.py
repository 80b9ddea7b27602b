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
            "data_connection": {"connected": False, "error": "timeout"},
        }
    )


def fake_hub():
    from vlan_nats.aio.hubmetrics import HubView, ServiceView

    return HubView("0", "0.0.0.0:4222", True, 0, [ServiceView("0", "198.18.0.0/24", 254, {})])


def test_every_queried_metric_exists():
    from prometheus_client import generate_latest

    from vlan_nats.aio import hubmetrics

    text = generate_latest(registry_for(fake_status)).decode()
    text += generate_latest(hubmetrics.registry_for(fake_hub)).decode()
    # series, and families without one (a problem gauge while all is well)
    served = set(re.findall(r"^(vlan_nats_\w+?)(?:\{| )", text, re.M))
    served |= set(re.findall(r"^# TYPE (vlan_nats_\w+) gauge", text, re.M))
    dash = json.loads(DASH.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    queried = {m for e in exprs for m in re.findall(r"vlan_nats_\w+", e)}
    assert queried and queried <= served, queried - served


def test_what_an_operator_looks_for_has_a_panel():
    dash = json.loads(DASH.read_text())
    exprs = " ".join(t["expr"] for p in dash["panels"] for t in p["targets"])
    for metric in ("arp_sent_total", "leased_addresses", "address_problem", "data_connected",
                   "duplicate_mac", "duplicate_address", "network_revision", "network_problem",
                   "ipam_requests_total", "hub_server_up"):  # fmt: skip
        assert f"vlan_nats_{metric}" in exprs, metric
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
