"""The README's first command: the demo passes and leaves nothing behind."""

import subprocess
import sys

from vlan_nats import cdatapath


def leftovers():
    ns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    taps = subprocess.run(
        ["ip", "-o", "link", "show", "type", "tun"], capture_output=True, text=True
    ).stdout
    procs = subprocess.run(
        ["pgrep", "-af", "nats-server|vlan_nats up"], capture_output=True, text=True
    ).stdout
    return ({x.split()[0] for x in ns.splitlines()}, taps, procs)


def test_demo_passes_and_cleans_up():
    before = leftovers()
    r = subprocess.run(
        [sys.executable, "-m", "vlan_nats", "demo", "--transfer-mb", "20"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "all checks passed" in r.stdout
    assert r.stdout.count("  ok  ") == 15
    # The network's MTU raised once, live on every node, and network show.
    assert "3 nodes at 9000" in r.stdout and "8972 bytes, DF set: 3/3" in r.stdout, r.stdout
    assert "3 members, 3 leases, problems: none" in r.stdout, r.stdout
    # Addresses from the address service, and routed ARP's figures.
    assert r.stdout.count("from the address service") == 3, r.stdout
    assert "per resolution (broadcast: 2)" in r.stdout, r.stdout
    # It says which datapath moved the frames: c wherever libnats is built in.
    want = "datapath: c (built with libnats" if cdatapath.available() else "datapath: python"
    assert want in r.stdout and "on all 3 hosts" in r.stdout, r.stdout
    assert leftovers() == before
