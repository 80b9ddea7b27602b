#!/usr/bin/env python3
"""Benchmark vlan-nats against a plain veth pair, in one run, on this machine.

    sudo .venv/bin/python scripts/bench.py [--seconds 10] [--runs 3] [--sealed] [--json]

Builds its own namespaces and a private nats-server (all removed at the
end) and measures side by side:

  veth        two namespaces joined by a veth pair: the baseline
  offload     the tunnel with GSO/checksum offloads (the default)
  no-offload  the tunnel with --no-offload (frames <= MTU)
  sealed      (with --sealed) the default tunnel with --key-file: every
              frame sealed with AES-256-GCM (docs/security.md)
  relay       the NATS relay ceiling: a bare publisher -> subscriber stream
              of 64 KiB messages through the same kind of server; and the
              latency floor: a nats-py request -> echo -> reply round trip
              (two Python processes, two server hops: what a ping through the
              tunnel pays before any TAP work)

For each: iperf3 TCP Gbit/s and 64-byte UDP packets per second delivered
(counted by the receiving iperf3), each over ``runs`` x ``seconds`` (median,
min, max); ping RTT over 100 pings 10 ms apart (avg, min); CPU seconds per
GB moved during the TCP runs, by the daemons and by nats-server.  Ratios
are to veth measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from vlan_nats.keys import write_new_key  # noqa: E402
from vlan_nats.lab.hosts import Lab, Namespace, run, unique_prefix  # noqa: E402
from vlan_nats.lab.natsserver import NatsServer  # noqa: E402
from vlan_nats.lab.procstat import cpu_seconds  # noqa: E402


class Pair:
    """Two hosts that can reach each other: a.ns -> b_ip."""

    def __init__(self, a: Namespace, b: Namespace, b_ip: str, pids: dict[str, list[int]]):
        self.a, self.b, self.b_ip, self.pids = a, b, b_ip, pids


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
        for _ in range(runs):
            before = {k: cpu_seconds(v) for k, v in pair.pids.items()}
            out = iperf3(pair, [], seconds)
            for k, v in pair.pids.items():
                cpu[k] += cpu_seconds(v) - before[k]
            recv = out["end"]["sum_received"]
            tcp.append(recv["bits_per_second"] / 1e9)
            moved += recv["bytes"]
        udp = []
        for _ in range(runs):  # single UDP runs vary by +-30 % here: take the median
            out = iperf3(pair, ["-u", "-l", "64", "-b", "0"], seconds)
            # What the receiving iperf3 got, over the time it took to get it
            # (frames still queued when the sender stopped count against the
            # rate).  "sum_sent" is the sender's view: not this.
            s = out["end"]["sum_received"]
            udp.append((s["packets"] - s["lost_packets"]) / s["seconds"])
        # 100 pings 10 ms apart.  Idle wake-ups dominate here: wider spacing
        # lets CPUs sleep deeper and reads slower (see docs/performance.md).
        pr = pair.a.run("ping", "-n", "-q", "-c", "100", "-i", "0.01", pair.b_ip, check=False)
        rtt = pr.stdout.strip().rsplit("=", 1)[-1].split("/") if "rtt" in pr.stdout else None
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
        "ping_avg_ms": float(rtt[1]) if rtt else None,
        "ping_min_ms": float(rtt[0].strip()) if rtt else None,
        "cpu_s_per_gb": {k: round(v / gb, 3) for k, v in cpu.items()} if gb else {},
    }


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


def bench_tunnel(extra: list[str], seconds: int, runs: int) -> dict:
    with Lab(2, tag="vnb", subnet="198.18.11", node_args=extra) as lab:
        h1, h2 = lab.nodes
        h1.link_local()
        h2.link_local()
        assert lab.server.proc is not None
        pids = {"daemons": [h1.proc.pid, h2.proc.pid], "nats-server": [lab.server.proc.pid]}
        return measure(Pair(h1.ns, h2.ns, h2.ip, pids), seconds, runs)


# -- NATS relay ceiling: raw protocol, no client library ----------------------


def _nats_socket(url: str) -> socket.socket:
    host, port = url.rsplit("//", 1)[1].rsplit(":", 1)
    s = socket.create_connection((host, int(port)))
    s.recv(4096)  # INFO
    s.sendall(b'CONNECT {"verbose":false,"pedantic":false}\r\n')
    return s


def relay_publish(url: str, seconds: float) -> None:
    s = _nats_socket(url)
    msg = b"PUB bench.relay 65536\r\n" + bytes(65536) + b"\r\n"
    chunk = msg * 16
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        s.sendall(chunk)
    s.close()


async def _echo(url: str) -> None:
    import nats

    nc = await nats.connect(url)

    async def cb(msg) -> None:  # type: ignore[no-untyped-def]
        await nc.publish(msg.reply, msg.data)

    await nc.subscribe("bench.echo", cb=cb)
    await nc.flush()
    print("ready", flush=True)
    await asyncio.sleep(3600)


async def _echo_rtts(url: str, count: int, interval: float) -> list[float]:
    import nats

    nc = await nats.connect(url)
    sub = await nc.subscribe("bench.back")
    await nc.flush()
    rtts = []
    for _ in range(count + 5):
        t0 = time.perf_counter()
        await nc.publish("bench.echo", bytes(84), reply="bench.back")
        await sub.next_msg(timeout=5)
        rtts.append((time.perf_counter() - t0) * 1e3)
        await asyncio.sleep(interval)
    await nc.close()
    return rtts[5:]  # warm-up excluded


def echo_floor(url: str, count: int = 100, interval: float = 0.01) -> tuple[float, float]:
    """(avg, min) ms of a nats-py echo round trip, paced like the pings."""
    echo = subprocess.Popen(
        [sys.executable, __file__, "--echo", url], stdout=subprocess.PIPE, text=True
    )
    try:
        assert echo.stdout is not None
        echo.stdout.readline()
        rtts = asyncio.run(_echo_rtts(url, count, interval))
    finally:
        echo.kill()
        echo.wait()
    return statistics.mean(rtts), min(rtts)


def bench_relay(seconds: int) -> dict:
    with NatsServer() as server:
        sub = _nats_socket(server.url)
        sub.sendall(b"SUB bench.relay 1\r\nPING\r\n")
        buf = b""
        while b"PONG" not in buf:
            buf += sub.recv(4096)
        total = [0]
        stop = threading.Event()

        def reader() -> None:
            sub.settimeout(0.5)
            b = bytearray(1 << 20)
            while not stop.is_set():
                try:
                    total[0] += sub.recv_into(b)
                except TimeoutError:
                    continue

        t = threading.Thread(target=reader)
        t.start()
        pid = server.proc.pid if server.proc else 0
        c0 = cpu_seconds([pid])
        pub = subprocess.Popen([sys.executable, __file__, "--relay-pub", server.url, str(seconds)])
        t0 = time.monotonic()
        pub.wait()
        secs = time.monotonic() - t0
        time.sleep(0.3)
        stop.set()
        t.join()
        sub.close()
        gb = total[0] / 1e9
        avg, low = echo_floor(server.url)
        return {
            "tcp_gbit_median": total[0] * 8 / secs / 1e9,
            "ping_avg_ms": avg,
            "ping_min_ms": low,
            "cpu_s_per_gb": {
                "nats-server": round((cpu_seconds([pid]) - c0) / gb, 3) if gb else None
            },
        }


def table(results: dict) -> str:
    veth = results.get("veth", {})
    base = veth.get("tcp_gbit_median")
    rows = [
        f"{'system':<12} {'TCP Gbit/s (med min-max)':<26} {'x veth':>7} {'UDP64 kpps':>10} "
        f"{'x veth':>7} {'ping avg/min ms':>16}  CPU s/GB"
    ]
    for name, r in results.items():
        tcp = r.get("tcp_gbit_median")
        rng = (
            f"{tcp:.2f} ({r['tcp_gbit_min']:.2f}-{r['tcp_gbit_max']:.2f})"
            if "tcp_gbit_min" in r
            else f"{tcp:.2f}"
        )
        ratio = f"{tcp / base:.3f}" if base else "-"
        udp = r.get("udp64_kpps")
        uratio = f"{udp / veth['udp64_kpps']:.3f}" if udp and veth.get("udp64_kpps") else "-"
        png = f"{r['ping_avg_ms']:.3f}/{r['ping_min_ms']:.3f}" if r.get("ping_avg_ms") else "-"
        cpu = ", ".join(f"{k} {v}" for k, v in r.get("cpu_s_per_gb", {}).items()) or "-"
        rows.append(
            f"{name:<12} {rng:<26} {ratio:>7} {udp or 0:>10.1f} {uratio:>7} {png:>16}  {cpu}"
        )
    return "\n".join(rows)


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
        default="veth,offload,no-offload,relay",
        help="comma-separated subset of veth,offload,no-offload,relay,sealed",
    )
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ap.add_argument(
        "--sealed", action="store_true", help="also measure sealed frames (adds 'sealed')"
    )
    ap.add_argument("--relay-pub", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--echo", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.echo:
        asyncio.run(_echo(args.echo))
        return 0
    if args.relay_pub:
        relay_publish(args.relay_pub[0], float(args.relay_pub[1]))
        return 0
    if os.geteuid() != 0:
        print("bench.py: run as root (it creates namespaces and TAP devices)", file=sys.stderr)
        return 1
    prefix = unique_prefix("vnb")
    results: dict = {}
    wanted = args.only.split(",") + (["sealed"] if args.sealed else [])
    if "veth" in wanted:
        results["veth"] = bench_veth(prefix, args.seconds, args.runs)
    if "offload" in wanted:
        results["offload"] = bench_tunnel([], args.seconds, args.runs)
    if "sealed" in wanted:
        with tempfile.TemporaryDirectory() as d:
            key = os.path.join(d, "bench.key")
            write_new_key(key)
            results["sealed"] = bench_tunnel(["--key-file", key], args.seconds, args.runs)
    if "no-offload" in wanted:
        results["no-offload"] = bench_tunnel(["--no-offload"], args.seconds, args.runs)
    if "relay" in wanted:
        results["relay"] = bench_relay(args.seconds)
    print(json.dumps(results, indent=2) if args.json else table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
