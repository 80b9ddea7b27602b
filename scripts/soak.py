#!/usr/bin/env python3
"""Soak: traffic for a long time while the server restarts and links flap.

    sudo scripts/soak.sh 30m [--restart-every 60] [--flap-every 45] [--report-every 10]

Three hosts on one LAN: host 1 pings host 2 every 100 ms; host 3 sends
checksummed 100 MiB transfers to host 1 at 20 MiB/s, one after another.
Every --restart-every seconds nats-server is killed and started again on
its port; every --flap-every seconds host 2's link goes down and up.  Every
--report-every seconds one line: ping loss in that window, transfers
ok/failed so far, NATS reconnects, and each daemon's RSS.  A summary at the
end; everything is removed, on failure and Ctrl-C too.
"""

from __future__ import annotations

import argparse
import re
import sys
import threading
import time

from vlan_nats.errors import LabError  # noqa: E402
from vlan_nats.lab.checks import TransferRun, ping  # noqa: E402
from vlan_nats.lab.hosts import Lab  # noqa: E402
from vlan_nats.lab.procstat import rss_mb  # noqa: E402


def seconds(text: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([smh]?)", text)
    if not m:
        raise argparse.ArgumentTypeError(f"bad duration {text!r}: e.g. 90, 90s, 30m, 2h")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="example:\n  sudo scripts/soak.sh 30m",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("duration", type=seconds, help="how long: 600, 10m, 2h")
    ap.add_argument("--restart-every", type=seconds, default=60.0)
    ap.add_argument("--flap-every", type=seconds, default=45.0)
    ap.add_argument("--report-every", type=seconds, default=10.0)
    return ap.parse_args()


def main() -> int:
    args = parse_args()
    stop = threading.Event()
    xfers = {"ok": 0, "failed": 0}
    events: list[str] = []
    with Lab(3, tag="vnk", subnet="198.18.16") as lab:
        h1, h2, h3 = lab.nodes

        def transfers() -> None:
            port = 5400
            while not stop.is_set():
                port = 5400 + (port - 5399) % 50  # a fresh port each time
                try:
                    ok = TransferRun(h3, h1, 100, port=port, rate_mib_s=20).start().result(300)
                    xfers["ok" if ok.ok else "failed"] += 1
                except LabError as e:
                    xfers["failed"] += 1
                    events.append(f"transfer failed: {e}")

        def disturb() -> None:
            faults(lab, args, stop, events)

        workers = [threading.Thread(target=f, daemon=True) for f in (transfers, disturb)]
        for w in workers:
            w.start()
        start = time.monotonic()
        rss0 = [rss_mb(n.proc.pid) for n in lab.nodes]
        rss_max = list(rss0)
        sent = received = 0
        print(f"{'time':>7} {'ping loss':>10} {'xfer ok/fail':>13} {'reconnects':>10}  RSS MB")
        try:
            while time.monotonic() - start < args.duration:
                window = min(args.report_every, args.duration - (time.monotonic() - start))
                if window < 1:
                    break
                count = max(1, int(window / 0.1))
                r = ping(h1.ns, h2.ip, count=count, interval=0.1, deadline=int(window) + 2)
                sent += r.sent
                received += r.received
                rss = [rss_mb(n.proc.pid) for n in lab.nodes]
                rss_max = [max(a, b) for a, b in zip(rss_max, rss, strict=True)]
                reconnects = sum(n.counters()["nats_reconnects"] for n in lab.nodes)
                loss = 100.0 * (r.sent - r.received) / r.sent if r.sent else 0.0
                while events:
                    print("   ", events.pop(0))
                print(f"{time.monotonic() - start:6.0f}s {loss:9.1f}% "
                      f"{xfers['ok']:>6}/{xfers['failed']:<6} {reconnects:>10}  "
                      + " ".join(f"{x:.1f}" for x in rss), flush=True)  # fmt: skip
        finally:
            stop.set()
            for w in workers:
                w.join(timeout=320)
        summary(time.monotonic() - start, sent, received, xfers, rss0, rss_max)
        return 0 if xfers["failed"] == 0 and all(n.proc.poll() is None for n in lab.nodes) else 1


def faults(lab: Lab, args: argparse.Namespace, stop: threading.Event, events: list[str]) -> None:
    """Restart the server and flap h2's link, each at its interval, until ``stop``."""
    h2 = lab.nodes[1]
    t0 = time.monotonic()
    next_restart, next_flap = args.restart_every, args.flap_every
    while not stop.wait(0.5):
        now = time.monotonic() - t0
        if now >= next_restart:
            lab.server.kill()
            lab.server.start()
            events.append(f"{now:7.1f}s server restarted")
            next_restart += args.restart_every
        if now >= next_flap:
            h2.ns.run("ip", "link", "set", "dev", h2.dev, "down")
            time.sleep(0.5)
            h2.ns.run("ip", "link", "set", "dev", h2.dev, "up")
            events.append(f"{now:7.1f}s link flap on {h2.dev}")
            next_flap += args.flap_every


def summary(secs: float, sent: int, received: int, xfers: dict[str, int], rss0: list[float],
            rss_max: list[float]) -> None:  # fmt: skip
    total_loss = 100.0 * (sent - received) / sent if sent else 0.0
    print(
        f"summary: {secs:.0f} s; ping {received}/{sent} "
        f"({total_loss:.2f} % lost); transfers {xfers['ok']} ok, {xfers['failed']} failed; "
        f"RSS MB start {' '.join(f'{x:.1f}' for x in rss0)}, "
        f"max {' '.join(f'{x:.1f}' for x in rss_max)}"
    )


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("soak: interrupted; cleaned up", file=sys.stderr)
        sys.exit(130)
