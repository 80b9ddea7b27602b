"""--metrics-listen: a Prometheus scrape of a running daemon."""

import socket
import subprocess
import urllib.error
import urllib.request

import pytest

from vlan_nats.lab.checks import ping
from vlan_nats.lab.hosts import Lab, free_port

from .helpers import ExternalServer, running_hub, scrape


def test_scrape_counts_what_happened(dataplane):
    port = free_port()
    with Lab(2, dataplane=dataplane, tag="vnm", start_nodes=False) as lab:
        h1, h2 = lab.nodes
        h1.args += ["--metrics-listen", f"127.0.0.1:{port}"]
        h1.start()
        h2.start()
        assert ping(h1.ns, h2.ip, count=5, interval=0.1).ok
        m = scrape(port)
        out_uni = m[("vlan_nats_frames_total", (("direction", "out"), ("kind", "unicast")))]
        in_uni = m[("vlan_nats_frames_total", (("direction", "in"), ("kind", "unicast")))]
        assert out_uni >= 5 and in_uni >= 5
        assert m[("vlan_nats_frames_total", (("direction", "out"), ("kind", "broadcast")))] >= 1
        assert (
            m[("vlan_nats_frame_bytes_total", (("direction", "out"), ("kind", "unicast")))]
            >= 5 * 98
        )
        assert m[("vlan_nats_nats_connected", ())] == 1
        assert m[("vlan_nats_peers", ())] >= 1
        assert ("vlan_nats_drops_total", (("reason", "replay"),)) in m  # every reason, zeros too
        assert m[("vlan_nats_nats_reconnects_total", ())] == 0
        # h1 resolved h2 with one routed ARP request (a fresh LAN).
        assert m[("vlan_nats_arp_sent_total", (("how", "routed"),))] >= 1
        assert ("vlan_nats_arp_sent_total", (("how", "broadcast"),)) in m
        info = [k for k in m if k[0] == "vlan_nats_info"]
        assert info and dict(info[0][1])["dev"] == h1.dev
        assert any(k[0] == "vlan_nats_offload" for k in m)  # offloads negotiated by default
        # The counters move with traffic.
        assert ping(h1.ns, h2.ip, count=3, interval=0.1).ok
        assert (
            scrape(port)[("vlan_nats_frames_total", (("direction", "out"), ("kind", "unicast")))]
            >= out_uni + 3
        )
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/other", timeout=5)
        assert e.value.code == 404
    with pytest.raises(OSError):  # gone with the daemon
        scrape(port)


def test_port_in_use_is_one_line():
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with Lab(1, tag="vnm", start_nodes=False) as lab:
            n = lab.nodes[0]
            r = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "vlan_nats",
                    "up",
                    "--netns",
                    n.ns.name,
                    "--dev",
                    n.dev,
                    "--server",
                    lab.server.url,
                    "--mac",
                    "random",
                    "--metrics-listen",
                    f"127.0.0.1:{port}",
                ],
                capture_output=True,
                text=True,
                timeout=30,
            )
    assert r.returncode == 1 and "--metrics-listen" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_the_hubs_metrics(tmp_path):
    """hub --metrics-listen: its nats-server and its address service, after
    two nodes took leases; promtool finds nothing to say."""
    metrics_port = free_port()
    with running_hub("--store", str(tmp_path / "store"), "--ipam", "0=198.18.13.0/28",
                     "--metrics-listen", f"127.0.0.1:{metrics_port}") as (port, _):  # fmt: skip
        with Lab(0, tag="vnm", server=ExternalServer(port=port)) as lab:
            for i in (1, 2):
                lab.add_node(i, extra=["--address", "auto"]).wait_lease()
            m = scrape(metrics_port)
    assert m[("vlan_nats_hub_server_up", ())] == 1
    assert m[("vlan_nats_hub_server_restarts_total", ())] == 0
    granted = (("network", "0"), ("result", "granted"))
    assert m[("vlan_nats_ipam_requests_total", granted)] == 2
    assert ("vlan_nats_ipam_requests_total", (("network", "0"), ("result", "held"))) in m
    pool = [v for k, v in m.items() if k[0] == "vlan_nats_ipam_pool_addresses"]
    assert pool == [14], m
