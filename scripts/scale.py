#!/usr/bin/env python3
"""Put N hosts on one virtual LAN with one nats-server and measure it.

    sudo .venv/bin/python scripts/scale.py 64 [--sample 30] [--json]

Starts N namespaces with one daemon each (addresses 198.18.32.0/19), then
reports: the time until all N are ready; reachability of a random sample
of pairs and of every host to host 1 (all-to-one); the same sample again
after flushing every neighbour table (ARP churn); per-daemon RSS and PSS
(median, max) and idle CPU; and the cost of one broadcast across the LAN
(CPU of all daemons and the server per broadcast frame, and the server's
fan-out).  Everything is removed at the end, on failure and Ctrl-C too.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import ipaddress
import json
import os
import random
import signal
import statistics
import sys
import time

from vlan_nats.lab.checks import ping  # noqa: E402
from vlan_nats.lab.hosts import Lab  # noqa: E402
from vlan_nats.lab.procstat import cpu_seconds as cpu_s  # noqa: E402
from vlan_nats.lab.procstat import memory_mb as mem_mb  # noqa: E402

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


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="example:\n  sudo .venv/bin/python scripts/scale.py 64",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("n", type=int, help="number of hosts (2-1000)")
    ap.add_argument("--sample", type=int, default=30, help="random pairs to ping")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("scale.py: run as root (it creates namespaces and TAP devices)", file=sys.stderr)
        return 1
    if not 2 <= args.n <= 1000:
        print("scale.py: n must be 2-1000", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    res: dict[str, object] = {"n": args.n}
    hosts = list(NET.hosts())
    with Lab(0, tag="vns", plen=NET.prefixlen) as lab:
        t0 = time.monotonic()
        for i in range(1, args.n + 1):
            node = lab.add_node(i, start=False)
            node.address = f"{hosts[i - 1]}/{NET.prefixlen}"
            node.start(timeout=0)
        for node in lab.nodes:
            node.wait_ready(timeout=300)
        res["ready_all_s"] = round(time.monotonic() - t0, 1)
        nodes = lab.nodes
        pairs = [tuple(random.sample(nodes, 2)) for _ in range(args.sample)]
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
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        for k, v in res.items():
            print(f"{k:<26} {v}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("scale.py: interrupted; cleaned up", file=sys.stderr)
        sys.exit(130)
