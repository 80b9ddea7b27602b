"""The NATS floors and ceilings scripts/bench.py measures beside the tunnels.

  relay    a bare raw-protocol publisher -> subscriber stream of 64 KiB
           messages through a server of its own (the ceiling), and a nats-py
           request -> echo -> reply round trip (the floor)
  libnats  the same with libnats (scripts/natsbench.c, compiled once per
           run): the ceiling and floor of a datapath on libnats; its echo is
           also run through each tunnel's own server (bench.py, pings())

Run as a script, it is one of the helper processes bench_relay() starts:
``--relay-pub URL SECONDS`` or ``--echo URL``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import threading
import time

from vlan_nats.lab.natsserver import NatsServer
from vlan_nats.lab.procstat import cpu_seconds

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
        NATSBENCH["error"] = f"cannot build natsbench.c (libnats-dev?): {cc.stderr[-200:]}"
        return NATSBENCH["error"]
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


def main() -> int:
    ap = argparse.ArgumentParser(description="a helper process of scripts/bench.py")
    ap.add_argument("--relay-pub", nargs=2, metavar=("URL", "SECONDS"))
    ap.add_argument("--echo", metavar="URL")
    args = ap.parse_args()
    if args.echo:
        asyncio.run(_echo(args.echo))
    elif args.relay_pub:
        relay_publish(args.relay_pub[0], float(args.relay_pub[1]))
    else:
        ap.error("--relay-pub or --echo")
    return 0


if __name__ == "__main__":
    sys.exit(main())
