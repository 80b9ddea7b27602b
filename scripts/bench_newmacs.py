#!/usr/bin/env python3
"""What a burst of new MACs behind a bridge costs the frames that keep moving.

    sudo .venv/bin/python scripts/bench_newmacs.py [--macs 2000] [--dataplane c]

Host A bridges a segment (br0, a veth to a 'gen' namespace) on the given
datapath; host B is a plain node.  B pings A's bridge address every 5 ms,
first on a quiet LAN, then while 'gen' sends one broadcast frame from each
of ``--macs`` new source MACs as fast as it can.  Every new MAC is an upcall
to A's control plane (core.switching decides: serve it or not).  Printed:
the ping RTTs (median, 99th percentile, max) and losses of both phases, how
long the burst took to send, and A's counters of the burst (frames held
back, drops).  Namespaces, nodes and the server are removed at the end.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time

from vlan_nats.lab.hosts import Lab, Namespace

_TIME_RE = re.compile(r"time=([\d.]+) ms")

GEN = r"""
import os, socket, sys, time
n = int(sys.argv[1])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
t = time.monotonic()
for i in range(n):
    src = bytes([0x02, 0x6e, 0x65, (i >> 16) & 255, (i >> 8) & 255, i & 255])
    s.send(b"\xff" * 6 + src + b"\x88\xb5" + bytes(46))
print(time.monotonic() - t)
"""


def pinger(b: Namespace, target: str, count: int) -> subprocess.Popen[str]:
    return b.popen("ping", "-n", "-i", "0.005", "-W", "1", "-c", str(count), target,
                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)  # fmt: skip


def summary(out: str, count: int) -> str:
    rtts = sorted(float(x) for x in _TIME_RE.findall(out))
    if not rtts:
        return f"no replies of {count}"
    p99 = rtts[min(len(rtts) - 1, int(len(rtts) * 0.99))]
    return (f"rtt median {statistics.median(rtts):.3f} ms, p99 {p99:.3f}, max {rtts[-1]:.3f}; "
            f"lost {count - len(rtts)} of {count}")  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--macs", type=int, default=2000, help="new source MACs in the burst")
    ap.add_argument("--dataplane", default="c", choices=("c", "python"))
    args = ap.parse_args()
    with Lab(2, dataplane=args.dataplane, tag="vnm", start_nodes=False) as lab:
        a, b = lab.nodes
        gen = Namespace(f"{lab.prefix}-gen")
        lab.namespaces.append(gen)
        a.ns.run("ip", "link", "add", "br0", "type", "bridge")
        a.ns.run("ip", "link", "set", "br0", "up")
        a.ns.run("ip", "addr", "add", "198.18.0.1/24", "dev", "br0")
        port = f"{lab.prefix}g"
        a.ns.run("ip", "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns",
                 gen.name)  # fmt: skip
        a.ns.run("ip", "link", "set", port, "master", "br0", "up")
        gen.run("ip", "link", "set", "eth0", "up")
        a.address = ""
        a.args += ["--bridge", "br0", "--max-macs", str(args.macs + 64)]
        a.start()
        b.start()
        p = pinger(b.ns, "198.18.0.1", 200)
        quiet, _ = p.communicate(timeout=60)
        before = a.counters()
        p = pinger(b.ns, "198.18.0.1", 400)
        time.sleep(0.3)
        sent = gen.run(sys.executable, "-c", GEN, str(args.macs)).stdout.strip()
        burst, _ = p.communicate(timeout=60)
        after = a.counters()
    drops = {k: v - before["drops"].get(k, 0) for k, v in after["drops"].items()}
    drops = {k: v for k, v in drops.items() if v}
    print(f"datapath {args.dataplane}, {args.macs} new MACs sent in {float(sent):.3f} s")
    print(f"quiet:       {summary(quiet, 200)}")
    print(f"during burst: {summary(burst, 400)}")
    print(f"A's drops during the burst: {drops or 'none'}; "
          f"tap frames read {after['tap_rx_frames'] - before['tap_rx_frames']}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
