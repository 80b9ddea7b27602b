#!/usr/bin/env python3
"""A frozen host among four: does it hurt the others, and does it come back?

    sudo .venv/bin/python scripts/bench_frozen.py [--freeze 30] [--pps 2000] [--dataplane c]

Four hosts on one LAN and one nats-server.  Host 1 sends TCP to host 2
(iperf3, one-second intervals); host 4 sends UDP broadcasts (--pps, 100
bytes) that every host receives.  After a baseline, host 3's daemon is
stopped with SIGSTOP for --freeze seconds (a paused VM, a hung process),
then continued.  Printed per second: host 1 -> 2 TCP Mbit/s, broadcast
frames per second read by hosts 1, 2 and 3 (their daemons' counters);
then how long host 3 took to answer a ping again, and what its daemon
and the server said.  Figures for docs/reliability.md.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import threading
import time

from vlan_nats.lab.checks import ping, udp_stream, wait_listening, wait_ping
from vlan_nats.lab.hosts import Lab


def broadcasts(node) -> int:
    try:
        return int(node.status()["counters"]["rx_by_kind"]["broadcast"])
    except Exception:  # a stopped daemon does not answer
        return -1


def answered(h1, h3, since: float, out: list[float]) -> None:
    """Ping host 3 from host 1 (0.2 s apart) until it answers."""
    while time.monotonic() - since < 60:
        if ping(h1.ns, h3.ip, count=1, deadline=0.2).ok:
            out.append(time.monotonic() - since)
            return


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--freeze", type=float, default=30.0)
    ap.add_argument("--pps", type=float, default=2000.0)
    ap.add_argument("--before", type=float, default=8.0)
    ap.add_argument("--after", type=float, default=20.0)
    ap.add_argument("--dataplane", default="c", choices=("c", "python"))
    args = ap.parse_args()
    total = args.before + args.freeze + args.after
    with Lab(4, tag="vnf", subnet="198.18.30", dataplane=args.dataplane) as lab:
        h1, h2, h3, h4 = lab.nodes
        for n in (h2, h3, h4):
            wait_ping(h1.ns, n.ip)
        server = h2.ns.popen("iperf3", "-s", "-1", "-p", "5301", stdout=open(os.devnull, "w"))
        wait_listening(h2.ns, 5301)
        client = h1.ns.popen("iperf3", "-c", h2.ip, "-p", "5301", "-t", str(int(total)), "-i",
                             "1", "-J", stdout=-1, stderr=-1)  # fmt: skip
        sender = udp_stream(h4.ns, "198.18.30.255", args.pps, 100)
        rows: list[tuple[float, list[int]]] = []
        t0 = time.monotonic()
        stopped = resumed = None
        back: list[float] = []  # seconds from SIGCONT to host 3's first ping reply
        while (t := time.monotonic() - t0) < total:
            if stopped is None and t >= args.before:
                os.kill(h3.proc.pid, signal.SIGSTOP)
                stopped = t
            if resumed is None and t >= args.before + args.freeze:
                os.kill(h3.proc.pid, signal.SIGCONT)
                resumed = time.monotonic()
                threading.Thread(target=answered, args=(h1, h3, resumed, back), daemon=True).start()
            frozen = stopped is not None and resumed is None  # it would not answer
            rows.append((t, [broadcasts(h1), broadcasts(h2), -1 if frozen else broadcasts(h3)]))
            time.sleep(1.0)
        deadline = time.monotonic() + 60
        while not back and time.monotonic() < deadline:
            time.sleep(0.1)
        out, err = client.communicate(timeout=60)
        sender.kill()
        sender.wait(10)
        server.wait(10)
        report(args, out, rows, back[0] if back else None, h3, lab.server.lines)
    return 0


def report(args: argparse.Namespace, iperf_json: str, rows: list[tuple[float, list[int]]],
           back: float | None, h3, server_lines: list[str]) -> None:  # fmt: skip
    try:
        tcp = [i["sum"]["bits_per_second"] / 1e6 for i in json.loads(iperf_json)["intervals"]]
    except (ValueError, KeyError):
        tcp = []
    print(f"{args.dataplane} datapath, broadcast {args.pps:.0f} pps from host 4, host 3 "
          f"stopped at {args.before:.0f} s for {args.freeze:.0f} s")  # fmt: skip
    print("  t s   TCP 1->2 Mbit/s   bcast/s h1   h2   h3")
    for i in range(1, len(rows)):
        t, now = rows[i]
        pairs = zip(rows[i - 1][1], now, strict=True)
        rate = [(b - a) if a >= 0 and b >= 0 else None for a, b in pairs]
        mbit = tcp[i] if i < len(tcp) else float("nan")
        cells = "  ".join(f"{r:6d}" if r is not None else "     -" for r in rate)
        print(f"  {t:4.0f}  {mbit:15.0f}   {cells}")
    print(f"host 3 answered a ping {back:.2f} s after SIGCONT" if back is not None
          else "host 3 did not answer a ping within 60 s after SIGCONT")  # fmt: skip
    said = [ln for ln in h3.lines if "WARNING" in ln or "ERROR" in ln]
    print("host 3 said:", *said[-8:] or ["nothing"], sep="\n  ")
    try:
        st = h3.status()
        print("host 3 status: connected", st["connected"], "error", st.get("nats_error"),
              "reconnects", st["counters"]["nats_reconnects"],
              "data", st.get("data_connection"))  # fmt: skip
    except Exception as e:
        print("host 3 status:", e)
    slow = [ln for ln in server_lines if "Slow Consumer" in ln or "Stall" in ln]
    print("server said:", *slow[-6:] or ["nothing about slow consumers"], sep="\n  ")


if __name__ == "__main__":
    socket.setdefaulttimeout(10)
    threading.excepthook = lambda a: None
    sys.exit(main())
