#!/usr/bin/env python3
"""Put N hosts on one virtual LAN with one nats-server and measure it.

    sudo .venv/bin/python scripts/scale.py 64 [--sample 30] [--ipam] [--arp both] [--json]

Starts N namespaces with one daemon each (addresses 198.18.32.0/19, or
with --ipam from two address-service instances: ``--address auto``), then
reports: the time until all N are ready (and, with --ipam, until all have
an address); reachability of a random sample of pairs and of every host to
host 1 (all-to-one); the same sample again after flushing every neighbour
table (ARP churn); per-daemon RSS and PSS (median, max) and idle CPU; the
cost of one broadcast across the LAN (CPU of all daemons and the server
per broadcast frame, and the server's fan-out); and the cost of one ARP
resolution (``arping`` from random hosts to random others): ARP requests
delivered into TAPs per resolution and the LAN's CPU per resolution.
``--arp both`` measures the LAN twice, routed ARP and --no-arp-routing,
side by side.  ``--netdef`` (JetStream on): the time from one
``vlan-nats network set 0 mtu=9000`` to each node's log line saying it
applied it (median and last), and back to 1500.  Everything is removed at
the end, on failure and Ctrl-C too.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import ipaddress
import itertools
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import time

from vlan_nats.lab.checks import ping
from vlan_nats.lab.hosts import Lab
from vlan_nats.lab.ipamproc import IpamProcess
from vlan_nats.lab.natsserver import NatsServer
from vlan_nats.lab.procstat import cpu_seconds as cpu_s
from vlan_nats.lab.procstat import memory_mb as mem_mb

NET = ipaddress.ip_network("198.18.32.0/19")


def reach(pairs, parallel: int = 8) -> int:
    """How many (src, dst) pairs answer one ping (2 tries)."""

    def one(p):
        src, dst = p
        return (
            ping(src.ns, dst.ip, count=1, deadline=3).received > 0
            or ping(src.ns, dst.ip, count=1, deadline=3).received > 0
        )

    with cf.ThreadPoolExecutor(parallel) as ex:
        return sum(ex.map(one, pairs))


def broadcast_code(dev: str, mac: str, count: int, per_s: int = 500) -> str:
    """Python that sends ``count`` broadcast frames, paced below the default
    storm limit (1000/s) and the TAP's queue: a frame dropped before the
    LAN costs it nothing and would flatter the figure."""
    return (
        "import socket, time\n"
        f"s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW); s.bind(({dev!r},0))\n"
        f"f=b'\\xff'*6+bytes.fromhex({mac.replace(':', '')!r})+b'\\x88\\xb5'+bytes(46)\n"
        f"for i in range({count}):\n"
        f"    s.send(f)\n"
        f"    if i % 100 == 99: time.sleep(100 / {per_s})\n"
    )


def start_nodes(lab: Lab, n: int, ipam: bool, extra: list[str], res: dict[str, object]) -> None:
    hosts = list(NET.hosts())
    t0 = time.monotonic()
    for i in range(1, n + 1):
        auto = ["--address", "auto"] if ipam else []
        node = lab.add_node(i, start=False, extra=[*extra, *auto])
        if not ipam:
            node.address = f"{hosts[i - 1]}/{NET.prefixlen}"
        node.start(timeout=0)
    for node in lab.nodes:
        node.wait_ready(timeout=300)
    res["ready_all_s"] = round(time.monotonic() - t0, 1)
    if ipam:
        for node in lab.nodes:
            node.wait_lease(timeout=300)
        res["addresses_all_s"] = round(time.monotonic() - t0, 1)
        addrs = {node.address for node in lab.nodes}
        res["addresses_distinct"] = f"{len(addrs)}/{n}"


def counter_sum(nodes, key: str, kind: str | None = None) -> int:
    total = 0
    for node in nodes:
        c = node.status()["counters"]
        total += c[key][kind] if kind else c[key]
    return total


def arp_cost(lab: Lab, idle_rate: float, count: int, res: dict[str, object]) -> None:
    """``count`` resolutions (arping, one request each) between random
    hosts: requests delivered into TAPs, and the LAN's CPU, per resolution."""
    nodes = lab.nodes
    pids = [n.proc.pid for n in nodes] + [lab.server.pid]
    arping = shutil.which("arping")
    if arping is None:
        res["arp"] = "skipped: no arping (apt-get install iputils-arping)"
        return
    # Distinct pairs: the same sender asking for the same target again within
    # seconds is a repeat, which routed ARP sends to broadcast on purpose.
    pairs = random.sample(list(itertools.permutations(nodes, 2)), min(count, len(nodes) ** 2 // 2))
    count = len(pairs)
    rx0 = counter_sum(nodes, "rx_by_kind", "broadcast")
    routed0 = counter_sum(nodes, "arp_routed")
    answered = 0
    c0, t = cpu_s(pids), time.monotonic()
    for src, dst in pairs:
        r = src.ns.run(arping, "-c", "1", "-w", "2", "-I", src.dev, dst.ip, check=False)
        answered += r.returncode == 0
    time.sleep(1)
    cost = cpu_s(pids) - c0 - idle_rate * (time.monotonic() - t)
    res["arp_resolutions_ok"] = f"{answered}/{count}"
    res["arp_routed"] = counter_sum(nodes, "arp_routed") - routed0
    res["arp_deliveries_per_resolution"] = round(
        (counter_sum(nodes, "rx_by_kind", "broadcast") - rx0) / count, 2
    )
    res["arp_cpu_ms_per_resolution"] = round(cost / count * 1000, 3)


def netdef_change(lab: Lab, mtu: int, res: dict[str, object]) -> None:
    """One `network set 0 mtu=N`: seconds until each node logged it applied."""
    import datetime

    want = f"mtu {1500 if mtu == 9000 else 9000} -> {mtu}, revision"
    seen = [len(n.lines) for n in lab.nodes]
    t0 = time.time()
    subprocess.run([sys.executable, "-m", "vlan_nats", "network", "set", "0", f"mtu={mtu}",
                    "--server", lab.server.url], check=True, capture_output=True)  # fmt: skip
    deadline = time.monotonic() + 60
    took: list[float] = []
    while time.monotonic() < deadline:
        lines = [next((x for x in n.lines[s:] if want in x), None)
                 for n, s in zip(lab.nodes, seen, strict=True)]  # fmt: skip
        if all(lines):
            took = [datetime.datetime.strptime(x[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp() - t0
                    for x in lines if x]  # fmt: skip
            break
        time.sleep(0.1)
    key = f"netdef_mtu_{mtu}"
    if not took:
        res[key] = "not applied everywhere in 60 s"
        return
    res[key + "_median_s"] = round(statistics.median(took), 3)
    res[key + "_last_s"] = round(max(took), 3)


def measure(n: int, sample: int, ipam: bool, arp_routing: bool,
            netdef: bool = False) -> dict[str, object]:  # fmt: skip
    res: dict[str, object] = {"n": n, "arp": "routed" if arp_routing else "broadcast"}
    server = NatsServer(jetstream=ipam or netdef)
    extra = [] if arp_routing else ["--no-arp-routing"]
    with Lab(0, tag="vns", plen=NET.prefixlen, server=server) as lab:
        services = []
        try:
            if ipam:
                services = [
                    IpamProcess(server.url, "0", str(NET), "--lease", "600").start()
                    for _ in range(2)
                ]
            start_nodes(lab, n, ipam, extra, res)
            if netdef:
                # The first definition makes the bucket; nodes find it within
                # a second (they look for it every second until it exists),
                # then watch it.
                subprocess.run([sys.executable, "-m", "vlan_nats", "network", "set", "0",
                                "description=scale", "--server", server.url], check=True)
                time.sleep(2.0)
                netdef_change(lab, 9000, res)
                netdef_change(lab, 1500, res)
            measure_lan(lab, sample, res)
        finally:
            for node in lab.nodes:
                node.stop()
            for svc in services:
                svc.stop()
    return res


def measure_lan(lab: Lab, sample: int, res: dict[str, object]) -> None:
    nodes = lab.nodes
    pairs = [tuple(random.sample(nodes, 2)) for _ in range(sample)]
    res["sample_pairs_ok"] = f"{reach(pairs)}/{len(pairs)}"
    res["all_to_one_ok"] = f"{reach([(n, nodes[0]) for n in nodes[1:]])}/{len(nodes) - 1}"
    for n in nodes:
        n.ns.run("ip", "neigh", "flush", "all")
    res["after_arp_flush_ok"] = f"{reach(pairs)}/{len(pairs)}"

    pids = [n.proc.pid for n in nodes]
    time.sleep(2)
    c0, s0, t = cpu_s(pids), cpu_s([lab.server.pid]), time.monotonic()
    time.sleep(10)
    dt = time.monotonic() - t
    idle_rate = (cpu_s(pids) - c0 + cpu_s([lab.server.pid]) - s0) / dt  # CPU-s per s
    res["idle_cpu_pct_per_daemon"] = round((cpu_s(pids) - c0) / dt / len(pids) * 100, 3)
    res["idle_cpu_pct_server"] = round((cpu_s([lab.server.pid]) - s0) / dt * 100, 2)
    mems = [mem_mb(p) for p in pids]
    rss = [m[0] for m in mems]
    pss = [m[1] for m in mems]
    res["rss_mb_median"] = round(statistics.median(rss), 1)
    res["rss_mb_max"] = round(max(rss), 1)
    res["pss_mb_median"] = round(statistics.median(pss), 1)

    count = 2500
    varz = lab.server.monitor("varz")
    in0, out0 = varz["in_msgs"], varz["out_msgs"]
    c0, s0, t = cpu_s(pids), cpu_s([lab.server.pid]), time.monotonic()
    src = nodes[0]
    src.ns.run(sys.executable, "-c", broadcast_code(src.dev, src.mac(), count))
    time.sleep(3)  # let every daemon finish writing them
    busy = (cpu_s(pids) - c0) + (cpu_s([lab.server.pid]) - s0)
    cost = busy - idle_rate * (time.monotonic() - t)
    varz = lab.server.monitor("varz")
    published = max(1, varz["in_msgs"] - in0)  # the broadcasts that reached NATS
    res["broadcasts_published"] = f"{published}/{count}"
    res["broadcast_cpu_ms"] = round(cost / published * 1000, 3)
    res["broadcast_fanout"] = round((varz["out_msgs"] - out0) / published, 1)
    arp_cost(lab, idle_rate, 100, res)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="example:\n  sudo .venv/bin/python scripts/scale.py 64 --ipam --arp both",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("n", type=int, help="number of hosts (2-1000)")
    ap.add_argument("--sample", type=int, default=30, help="random pairs to ping")
    ap.add_argument(
        "--ipam", action="store_true", help="addresses from two address-service instances"
    )
    ap.add_argument(
        "--arp",
        choices=("routed", "broadcast", "both"),
        default="routed",
        help="routed ARP (the default), --no-arp-routing, or both side by side",
    )
    ap.add_argument("--netdef", action="store_true",
                    help="time a network-wide MTU change (vlan-nats network set)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("scale.py: run as root (it creates namespaces and TAP devices)", file=sys.stderr)
        return 1
    if not 2 <= args.n <= 1000:
        print("scale.py: n must be 2-1000", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    modes = {"routed": [True], "broadcast": [False], "both": [True, False]}[args.arp]
    runs = [measure(args.n, args.sample, args.ipam, routing, args.netdef) for routing in modes]
    if args.json:
        print(json.dumps(runs if len(runs) > 1 else runs[0], indent=2))
    else:
        for k in runs[0]:
            print(f"{k:<30} " + "".join(f"{str(r.get(k, '')):<16}" for r in runs))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("scale.py: interrupted; cleaned up", file=sys.stderr)
        sys.exit(130)
