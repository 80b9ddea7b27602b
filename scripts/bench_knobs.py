#!/usr/bin/env python3
"""Measure the C datapath's knobs against the python datapath, interleaved.

    sudo .venv/bin/python scripts/bench_knobs.py [--rounds 2] CONFIG ...

A CONFIG is ``name:dataplane[:ENV=VALUE,ENV=VALUE]``, for example::

    py:python  c:c  threads:c:VLAN_NATS_DP_IO=threads,VLAN_NATS_DP_FLUSH=kick

The environment knobs (read by the daemon, see docs/performance.md):
VLAN_NATS_DP_IO=threads|loop|loop1, VLAN_NATS_DP_FLUSH=kick|asap|flusher|inline
(threads only), VLAN_NATS_DP_DELIVERY=pool|sub (threads only),
VLAN_NATS_DP_IOBUF=bytes, VLAN_NATS_DP_KICK_IDLE_US=microseconds.

Each round runs every config once, on a fresh pair of namespaces and its own
nats-server: 100 pings 10 ms apart and 20 pings 200 ms apart (avg ms), two
4 s 64-byte UDP floods (packets/s the receiving iperf3 got, mean), one 6 s
TCP run (Gbit/s, and the daemons' CPU seconds per GB), and the receiver's
slow-consumer drops.  Medians over the rounds are printed last.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

from bench import Pair, iperf3, ping

from vlan_nats.lab.hosts import Lab
from vlan_nats.lab.procstat import cpu_seconds


def one(config: str) -> dict[str, float]:
    name, dataplane, envs = (config.split(":", 2) + [""])[:3]
    env = dict(e.split("=", 1) for e in envs.split(",") if e)
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the daemons inherit it
    try:
        with Lab(2, tag="vnk", subnet="198.18.12", node_args=["--dataplane", dataplane]) as lab:
            h1, h2 = lab.nodes
            h1.link_local()
            h2.link_local()
            pair = Pair(h1.ns, h2.ns, h2.ip, {})
            srv = h2.ns.popen(
                "iperf3", "-s", "-B", h2.ip, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            try:
                p10, p200 = ping(pair, 100, 0.01), ping(pair, 20, 0.2)
                udp = []
                for _ in range(2):
                    s = iperf3(pair, ["-u", "-l", "64", "-b", "0"], 4)["end"]["sum_received"]
                    udp.append((s["packets"] - s["lost_packets"]) / s["seconds"] / 1e3)
                pids = [h1.proc.pid, h2.proc.pid]
                c0 = cpu_seconds(pids)
                recv = iperf3(pair, [], 6)["end"]["sum_received"]
                cpu = (cpu_seconds(pids) - c0) / (recv["bytes"] / 1e9)
            finally:
                srv.kill()
                srv.wait()
            slow = h2.counters()["drops"].get("slow_consumer", 0)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return {
        "ping10_ms": p10[0] if p10 else float("nan"),
        "ping200_ms": p200[0] if p200 else float("nan"),
        "udp64_kpps": statistics.mean(udp),
        "tcp_gbit": recv["bits_per_second"] / 1e9,
        "cpu_s_per_gb": cpu,
        "slow_consumer": slow,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("configs", nargs="+")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench_knobs.py: run as root", file=sys.stderr)
        return 1
    results: dict[str, list[dict[str, float]]] = {c: [] for c in args.configs}
    for _ in range(args.rounds):
        for c in args.configs:
            results[c].append(one(c))
            print(c, {k: round(v, 3) for k, v in results[c][-1].items()}, flush=True)
    print("--- medians")
    for c, rs in results.items():
        med = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
        print(f"{c:44s} " + " ".join(f"{k} {v:.3f}" for k, v in med.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
