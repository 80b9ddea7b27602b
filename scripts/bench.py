#!/usr/bin/env python3
"""Benchmark vlan-nats against a plain veth pair, in one run, on this machine.

    sudo .venv/bin/python scripts/bench.py [--seconds 10] [--runs 3] [--sealed] [--json]

Builds its own namespaces and a private nats-server (all removed at the
end) and measures side by side:

  veth        two namespaces joined by a veth pair: the baseline
  python      the tunnel on the python datapath (--dataplane python), with
              GSO/checksum offloads (the default)
  c           the same on the C datapath (--dataplane c, libnats)
  no-offload  (--only ...,no-offload) both datapaths with --no-offload
  sealed      (with --sealed) both datapaths with --key-file: every frame
              sealed with AES-256-GCM (docs/security.md)
  relay       the NATS relay ceiling: a bare publisher -> subscriber stream
              of 64 KiB messages on raw sockets through the same kind of
              server; and the latency floor: a nats-py request -> echo ->
              reply round trip (two Python processes, two server hops)
  libnats     the same two with libnats (scripts/natsbench.c, compiled
              here): the ceiling and the floor of a datapath on libnats

For each: iperf3 TCP Gbit/s and 64-byte UDP packets per second delivered
(counted by the receiving iperf3), each over ``runs`` x ``seconds`` (median,
min, max); ping RTT over 3 rounds of 100 pings 10 ms apart (avg, min) and
3 of 20 pings 200 ms apart (avg: idle wake-ups), each round followed by as
many libnats request/echo round trips through the tunnel's own server (the
floor: "ping / libnats echo floor via its server"); CPU seconds per GB moved
during the TCP runs, by the daemons and by nats-server; and (python, c) a
daemon's CPU on an idle LAN and with one ping a second (--idle-seconds
each).  Ratios are to veth measured in the same run, and c to python.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from benchnats import bench_libnats, bench_relay, build_natsbench, echo_libnats
from benchtable import table

from vlan_nats.keys import write_new_key  # noqa: E402
from vlan_nats.lab.hosts import Lab, Namespace, run, unique_prefix  # noqa: E402
from vlan_nats.lab.procstat import cpu_seconds, thread_cpu  # noqa: E402


class Pair:
    """Two hosts that can reach each other: a.ns -> b_ip.  ``floor``: the
    NATS server the tunnel goes through (its URL), for the libnats echo
    floor measured beside the pings."""

    def __init__(
        self,
        a: Namespace,
        b: Namespace,
        b_ip: str,
        pids: dict[str, list[int]],
        floor: str | None = None,
    ):
        self.a, self.b, self.b_ip, self.pids, self.floor = a, b, b_ip, pids, floor


def iperf3(pair: Pair, args: list[str], seconds: int) -> dict:
    for _ in range(50):
        res = pair.a.run(
            "iperf3",
            "-c",
            pair.b_ip,
            "-J",
            "-t",
            str(seconds),
            *args,
            timeout=seconds + 30,
            check=False,
        )
        out = json.loads(res.stdout or "{}")
        if "error" not in out and res.returncode == 0:
            return out
        time.sleep(0.2)  # server not listening yet
    raise RuntimeError(f"iperf3 failed: {res.stdout[-300:]} {res.stderr[-300:]}")


def measure(pair: Pair, seconds: int, runs: int) -> dict:
    server = pair.b.popen(
        "iperf3", "-s", "-B", pair.b_ip, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        tcp, cpu = [], {k: 0.0 for k in pair.pids}
        moved = 0
        threads0 = thread_cpu(pair.pids.get("daemons", []))
        for _ in range(runs):
            before = {k: cpu_seconds(v) for k, v in pair.pids.items()}
            out = iperf3(pair, [], seconds)
            for k, v in pair.pids.items():
                cpu[k] += cpu_seconds(v) - before[k]
            recv = out["end"]["sum_received"]
            tcp.append(recv["bits_per_second"] / 1e9)
            moved += recv["bytes"]
        threads1 = thread_cpu(pair.pids.get("daemons", []))
        udp = []
        for _ in range(runs):  # single UDP runs vary by +-30 % here: take the median
            out = iperf3(pair, ["-u", "-l", "64", "-b", "0"], seconds)
            # What the receiving iperf3 got, over the time it took to get it
            # (frames still queued when the sender stopped count against the
            # rate).  "sum_sent" is the sender's view: not this.
            s = out["end"]["sum_received"]
            udp.append((s["packets"] - s["lost_packets"]) / s["seconds"])
        rtt, idle, floor = pings(pair)
    finally:
        server.kill()
        server.wait()
    gb = moved / 1e9
    return {
        "tcp_gbit_median": statistics.median(tcp),
        "tcp_gbit_min": min(tcp),
        "tcp_gbit_max": max(tcp),
        "udp64_kpps": statistics.median(udp) / 1e3,
        "udp64_kpps_min": min(udp) / 1e3,
        "udp64_kpps_max": max(udp) / 1e3,
        "ping_avg_ms": rtt[0] if rtt else None,
        "ping_min_ms": rtt[1] if rtt else None,
        "ping200_avg_ms": idle[0] if idle else None,
        # The libnats echo floor through the same server, measured between
        # the pings (None: no tunnel server or no natsbench).
        "floor_avg_ms": floor[0],
        "floor200_avg_ms": floor[1],
        "cpu_s_per_gb": {k: round(v / gb, 3) for k, v in cpu.items()} if gb else {},
        # Where the daemons' CPU went during the TCP runs, by thread.
        "threads_s_per_gb": {
            k: round((v - threads0.get(k, 0.0)) / gb, 3)
            for k, v in sorted(threads1.items(), key=lambda kv: -kv[1])
            if v - threads0.get(k, 0.0) > 0
        }
        if gb
        else {},
    }


ROUNDS = 3  # of pings, each followed by the floor's round trips


def pings(pair: Pair) -> tuple[tuple[float, float] | None, tuple[float, float] | None, tuple]:
    """Ping 10 ms apart (3 rounds of 100) and 200 ms apart (3 of 20): the
    (avg, min) of each, and the libnats echo floor through the tunnel's own
    server measured the same way between the rounds (avg 10 ms, avg 200 ms).
    Idle wake-ups dominate at 200 ms: CPUs sleep deeper (docs/performance.md)."""
    out: list = []
    for count, interval in ((100, 0.01), (20, 0.2)):
        rtts, floors = [], []
        for _ in range(ROUNDS):
            r = ping(pair, count, interval)
            if r:
                rtts.append(r)
            f = echo_libnats(pair.floor, count, int(interval * 1000)) if pair.floor else None
            if f:
                floors.append(f[0])
        avg = (statistics.mean(r[0] for r in rtts), min(r[1] for r in rtts)) if rtts else None
        out.append((avg, statistics.mean(floors) if floors else None))
    return out[0][0], out[1][0], (out[0][1], out[1][1])


def ping(pair: Pair, count: int, interval: float) -> tuple[float, float] | None:
    """(avg, min) ms of ``count`` pings ``interval`` s apart."""
    pr = pair.a.run(
        "ping", "-n", "-q", "-c", str(count), "-i", str(interval), pair.b_ip, check=False
    )
    if "rtt" not in pr.stdout:
        return None
    low, avg = pr.stdout.strip().rsplit("=", 1)[-1].split("/")[:2]
    return float(avg), float(low.strip())


def bench_veth(prefix: str, seconds: int, runs: int) -> dict:
    a, b = Namespace(f"{prefix}-va"), Namespace(f"{prefix}-vb")
    try:
        run(
            [
                "ip",
                "link",
                "add",
                f"{prefix}a",
                "netns",
                a.name,
                "type",
                "veth",
                "peer",
                "name",
                f"{prefix}b",
                "netns",
                b.name,
            ]
        )
        for ns, dev, ip in (
            (a, f"{prefix}a", "198.18.10.1/24"),
            (b, f"{prefix}b", "198.18.10.2/24"),
        ):
            ns.run("ip", "addr", "add", ip, "dev", dev)
            ns.run("ip", "link", "set", dev, "up")
        return measure(Pair(a, b, "198.18.10.2", {}), seconds, runs)
    finally:
        a.delete()
        b.delete()


def bench_tunnel(extra: list[str], seconds: int, runs: int, idle_seconds: int = 0) -> dict:
    with Lab(2, tag="vnb", subnet="198.18.11", node_args=extra) as lab:
        h1, h2 = lab.nodes
        h1.link_local()
        h2.link_local()
        assert lab.server.proc is not None
        pids = {"daemons": [h1.proc.pid, h2.proc.pid], "nats-server": [lab.server.proc.pid]}
        pair = Pair(h1.ns, h2.ns, h2.ip, pids, floor=lab.server.url)
        out = measure(pair, seconds, runs)
        if idle_seconds:
            out["idle_cpu"] = idle_cpu(pair, idle_seconds)
        return out


def idle_cpu(pair: Pair, seconds: int) -> dict:
    """CPU of a daemon, in % of a core (the mean of both), on an idle LAN
    and with one ping a second, ``seconds`` each."""
    daemons = pair.pids["daemons"]

    def share(t0: float, c0: float) -> float:
        return round((cpu_seconds(daemons) - c0) / (time.monotonic() - t0) / len(daemons) * 100, 3)

    t0, c0 = time.monotonic(), cpu_seconds(daemons)
    time.sleep(seconds)
    idle = share(t0, c0)
    t0, c0 = time.monotonic(), cpu_seconds(daemons)
    ping(pair, seconds, 1.0)
    return {"idle_pct": idle, "ping1s_pct": share(t0, c0)}


def run_all(args: argparse.Namespace) -> dict:
    """Every system asked for, one after the other."""
    prefix = unique_prefix("vnb")
    more = args.daemon_args.split()
    results: dict = {}
    wanted = args.only.split(",") + (["sealed"] if args.sealed else [])
    if "veth" in wanted:
        results["veth"] = bench_veth(prefix, args.seconds, args.runs)
    datapaths = [d for d in ("python", "c") if d in wanted] or ["python", "c"]
    for dp in ("python", "c"):
        if dp in wanted:
            results[dp] = bench_tunnel(
                ["--dataplane", dp, *more], args.seconds, args.runs, args.idle_seconds
            )
    if "sealed" in wanted:
        with tempfile.TemporaryDirectory() as d:
            key = os.path.join(d, "bench.key")
            write_new_key(key)
            for dp in datapaths:
                results[f"{dp}-sealed"] = bench_tunnel(
                    ["--dataplane", dp, "--key-file", key, *more], args.seconds, args.runs
                )
    if "no-offload" in wanted:
        for dp in datapaths:
            results[f"{dp}-no-offload"] = bench_tunnel(
                ["--dataplane", dp, "--no-offload", *more], args.seconds, args.runs
            )
    if "relay" in wanted:
        results["relay"] = bench_relay(args.seconds)
    if "libnats" in wanted:
        results["libnats"] = bench_libnats(args.seconds)
    return results


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  sudo .venv/bin/python scripts/bench.py --seconds 10",
    )
    ap.add_argument("--seconds", type=int, default=10, help="length of each iperf3 run")
    ap.add_argument("--runs", type=int, default=3, help="TCP runs per system (median reported)")
    ap.add_argument(
        "--only",
        default="veth,python,c,relay,libnats",
        help="comma-separated subset of veth,python,c,no-offload,sealed,relay,libnats",
    )
    ap.add_argument(
        "--idle-seconds",
        type=int,
        default=30,
        help="python and c: daemon CPU on an idle LAN, then with one ping a second, this long "
        "each (0: not measured)",
    )
    ap.add_argument(
        "--daemon-args",
        default="",
        help='more arguments for every daemon, e.g. "--datapath-nice 0" (what a lever is worth)',
    )
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ap.add_argument(
        "--sealed", action="store_true", help="also measure sealed frames (adds 'sealed')"
    )
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench.py: run as root (it creates namespaces and TAP devices)", file=sys.stderr)
        return 1
    # SIGTERM unwinds like Ctrl-C: namespaces, daemons and servers are removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory() as d:
        build_natsbench(d)
        results = run_all(args)
    print(json.dumps(results, indent=2) if args.json else table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
