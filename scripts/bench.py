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
import asyncio
import json
import os
import signal
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


# scripts/natsbench.c, compiled once per run (main): the libnats floors.
NATSBENCH: dict[str, str] = {}


def natsbench(*args: str) -> list[str]:
    exe = NATSBENCH.get("exe")
    if not exe:
        return []
    return subprocess.run([exe, *args], capture_output=True, text=True).stdout.split()


def echo_libnats(url: str, count: int, interval_ms: int) -> tuple[float, float] | None:
    """(avg, min) ms of libnats request -> echo -> reply round trips."""
    out = natsbench("echo", url, str(count), str(interval_ms))
    return (float(out[0]), float(out[1])) if len(out) == 2 else None


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


def build_natsbench(d: str) -> str | None:
    """Compile scripts/natsbench.c into ``d``: None, or why it cannot."""
    exe = os.path.join(d, "natsbench")
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "natsbench.c")
    cc = subprocess.run(["cc", "-O2", "-o", exe, src, "-lnats"], capture_output=True, text=True)
    if cc.returncode != 0:
        return f"cannot build natsbench.c (libnats-dev?): {cc.stderr[-200:]}"
    NATSBENCH["exe"] = exe
    return None


def bench_libnats(seconds: int) -> dict:
    """A datapath on libnats at best: its relay ceiling and echo floor
    (100 round trips 10 ms apart, 20 200 ms apart) on a server of its own."""
    if "exe" not in NATSBENCH:
        return {"error": NATSBENCH.get("error", "natsbench.c not built")}
    with NatsServer() as server:
        pid = server.proc.pid if server.proc else 0
        c0 = cpu_seconds([pid])
        out = natsbench("relay", server.url, str(seconds))
        moved, secs = int(out[0]), float(out[1])
        server_cpu = cpu_seconds([pid]) - c0
        echo = echo_libnats(server.url, 100, 10)
        idle = echo_libnats(server.url, 20, 200)
    return {
        "tcp_gbit_median": moved * 8 / secs / 1e9,
        "ping_avg_ms": echo[0] if echo else None,
        "ping_min_ms": echo[1] if echo else None,
        "ping200_avg_ms": idle[0] if idle else None,
        "cpu_s_per_gb": {"nats-server": round(server_cpu / (moved / 1e9), 3)},
    }


def compare(results: dict) -> str:
    """c against python, and c against the libnats relay ceiling."""
    lines = []
    for suffix in ("", "-sealed", "-no-offload"):
        c, py = results.get(f"c{suffix}"), results.get(f"python{suffix}")
        if not c or not py:
            continue

        def ratio(key: str, r1: dict = c, r2: dict = py) -> str:
            a, b = r1.get(key), r2.get(key)
            return f"{a / b:.2f}x" if a and b else "-"

        cpu_c = c.get("cpu_s_per_gb", {}).get("daemons")
        cpu_py = py.get("cpu_s_per_gb", {}).get("daemons")
        cpu = f"{cpu_c / cpu_py:.2f}x" if cpu_c and cpu_py else "-"
        lines.append(
            f"c{suffix} / python{suffix}: ping(10 ms) {ratio('ping_avg_ms')}, "
            f"ping(200 ms) {ratio('ping200_avg_ms')}, UDP64 {ratio('udp64_kpps')}, "
            f"TCP {ratio('tcp_gbit_median')}, daemon CPU/GB {cpu}"
        )
    c, ceiling = results.get("c"), results.get("libnats")
    if c and ceiling and ceiling.get("tcp_gbit_median"):
        share = c["tcp_gbit_median"] / ceiling["tcp_gbit_median"]
        lines.append(f"c TCP / libnats relay ceiling: {share:.2f}x")
    for name, r in results.items():
        parts = [
            f"{label} {r[mine]:.3f} / {r[floor]:.3f} = {r[mine] / r[floor]:.2f}x"
            for label, mine, floor in (
                ("10 ms", "ping_avg_ms", "floor_avg_ms"),
                ("200 ms", "ping200_avg_ms", "floor200_avg_ms"),
            )
            if r.get(mine) and r.get(floor)
        ]
        if parts:
            lines.append(f"{name} ping / libnats echo floor via its server: " + ", ".join(parts))
    for name, r in results.items():
        if r.get("idle_cpu"):
            i = r["idle_cpu"]
            lines.append(
                f"{name} daemon CPU, % of a core: idle LAN {i['idle_pct']:.2f}, "
                f"one ping a second {i['ping1s_pct']:.2f}"
            )
    return "\n".join(lines)


def table(results: dict) -> str:
    veth = results.get("veth", {})
    base = veth.get("tcp_gbit_median")
    rows = [
        f"{'system':<12} {'TCP Gbit/s (med min-max)':<26} {'x veth':>7} {'UDP64 kpps':>10} "
        f"{'x veth':>7} {'ping avg/min ms':>16} {'ping200':>8}  CPU s/GB"
    ]
    for name, r in results.items():
        if "error" in r:
            rows.append(f"{name:<12} {r['error']}")
            continue
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
        idle = f"{r['ping200_avg_ms']:.3f}" if r.get("ping200_avg_ms") else "-"
        cpu = ", ".join(f"{k} {v}" for k, v in r.get("cpu_s_per_gb", {}).items()) or "-"
        rows.append(
            f"{name:<12} {rng:<26} {ratio:>7} {udp or 0:>10.1f} {uratio:>7} {png:>16} "
            f"{idle:>8}  {cpu}"
        )
    prof = [
        f"{name} daemons' CPU s/GB by thread: "
        + ", ".join(f"{t} {v}" for t, v in r["threads_s_per_gb"].items())
        for name, r in results.items()
        if r.get("threads_s_per_gb")
    ]
    return "\n".join(rows + [compare(results)] + prof)


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
    # SIGTERM unwinds like Ctrl-C: namespaces, daemons and servers are removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory() as d:
        why = build_natsbench(d)
        if why:
            NATSBENCH["error"] = why
        results = run_all(args)
    print(json.dumps(results, indent=2) if args.json else table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
