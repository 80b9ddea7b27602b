"""vlan-nats top: live rates per daemon on this host and per node."""

import subprocess
import sys

from vlan_nats.lab.hosts import Lab


def test_top_shows_rates_while_traffic_flows():
    with Lab(2, tag="vnq") as lab:
        h1, h2 = lab.nodes
        pinger = h1.ns.popen(
            "ping",
            "-q",
            "-i",
            "0.02",
            "-w",
            "8",
            h2.ip,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            r = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "vlan_nats",
                    "top",
                    "--count",
                    "2",
                    "--interval",
                    "1",
                    "--server",
                    lab.server.url,
                ],
                capture_output=True,
                text=True,
                timeout=30,
            )
        finally:
            pinger.kill()
            pinger.wait()
    assert r.returncode == 0, r.stderr
    last = r.stdout.strip().split("vlan-nats top")[-1]
    lines = last.splitlines()
    row1 = next(ln for ln in lines if ln.startswith(h1.dev))
    out_uni = row1.split()[3].split("/")[0]  # OUT pps uni/bc/mc
    assert 20 <= float(out_uni) <= 80, last  # ~50 pings/s
    assert "network 0: 2 nodes" in last
    peer_rows = [ln for ln in lines if h2.dev in ln and ":" in ln]
    assert peer_rows, last


def test_top_without_daemons_is_one_line():
    r = subprocess.run(
        [sys.executable, "-m", "vlan_nats", "top", "--count", "1", "--dev", "nonexistent0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 1 and "no vlan-nats daemon" in r.stderr and "Traceback" not in r.stderr
