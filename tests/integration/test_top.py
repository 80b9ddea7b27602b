"""vlan-nats top: live rates per daemon on this host and per node."""

import secrets
import subprocess
import sys

from vlan_nats.lab.hosts import Lab

from .helpers import same_named, wait_quiet


def test_top_shows_rates_while_traffic_flows():
    # Network 7, and top without --network: it shows the local daemons' network.
    with Lab(2, tag="vnq", node_args=["--network", "7"]) as lab:
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
    header = next(ln for ln in lines if ln.startswith("NETNS"))
    assert header.split()[:2] == ["NETNS", "DEV"]  # the lab's daemons live in namespaces
    row1 = next(ln for ln in lines if ln.split()[:2] == [h1.ns.name, h1.dev])
    out_uni = row1.split()[4].split("/")[0]  # OUT pps uni/bc/mc
    assert 20 <= float(out_uni) <= 80, last  # ~50 pings/s
    assert "network 7: 2 nodes" in last
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


def test_same_device_name_in_several_namespaces_shows_no_phantom_rates():
    """Idle daemons that share a device name are told apart by namespace:
    each row compares with its own previous sample, in a stable order."""
    network = str(100 + secrets.randbelow(3900))
    with Lab(0, tag="vnq") as lab:
        nodes = same_named(lab, network, 3)
        for n in nodes:  # let start-up traffic (DAD, router solicitations) settle
            n.ns.run("sysctl", "-qw", f"net.ipv6.conf.{n.dev}.disable_ipv6=1")
        assert wait_quiet(nodes)
        r = subprocess.run(
            [sys.executable, "-m", "vlan_nats", "top", "--count", "3", "--interval", "0.5"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert r.returncode == 0, r.stderr
    frames = [f for f in r.stdout.split("vlan-nats top")[1:]]
    assert len(frames) == 3
    orders = []
    for f in frames[1:]:
        rows = [ln.split() for ln in f.splitlines() if f"vnats{network}" in ln]
        assert [row[0] for row in rows] == sorted(n.ns.name for n in nodes), f
        orders.append([row[0] for row in rows])
        for row in rows:
            assert row[4] == "0/0/0" and row[5] == "0/0/0", f  # OUT and IN pps
    assert orders[0] == orders[1]
