#!/usr/bin/env python3
"""Profile both daemons of a 2-host lab with py-spy under load.

    sudo .venv/bin/python scripts/profile_daemons.py udp|tcp [--seconds 10] [--native]

Starts a private nats-server and two hosts, runs iperf3 (64-byte UDP flood
or a TCP flow) from host 1 to host 2, and has ``py-spy record`` sample the
sending and the receiving daemon meanwhile.  Prints the top functions by
own time for each (py-spy's raw output lands in /tmp/vlan-nats-profile-*).
Needs py-spy (pip install py-spy).
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import time
from pathlib import Path

from vlan_nats.lab.hosts import Lab  # noqa: E402


def top(raw: Path, n: int = 18) -> list[tuple[str, float]]:
    """Own-time per function from py-spy's collapsed stacks."""
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        leaf = stack.split(";")[-1]
        own[leaf] += int(count)
        total += int(count)
    return [(f, 100.0 * c / total) for f, c in own.most_common(n)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("load", choices=["udp", "tcp"])
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--native", action="store_true", help="include C frames (py-spy --native)")
    args = ap.parse_args()
    spy = shutil.which("py-spy")
    if not spy:
        print("profile_daemons.py: needs py-spy (pip install py-spy)", file=sys.stderr)
        return 1
    load = ["-u", "-l", "64", "-b", "0"] if args.load == "udp" else []
    with Lab(2, tag="vnp", subnet="198.18.12") as lab:
        h1, h2 = lab.nodes
        srv = h2.ns.popen("iperf3", "-s", "-B", h2.ip, stdout=subprocess.DEVNULL)
        time.sleep(0.5)
        client = h1.ns.popen(
            "iperf3", "-c", h2.ip, "-t", str(args.seconds + 2), *load, stdout=subprocess.DEVNULL
        )
        time.sleep(1)
        spies = {}
        for role, node in (("sender", h1), ("receiver", h2)):
            out = Path(f"/tmp/vlan-nats-profile-{args.load}-{role}.txt")
            cmd = [
                spy,
                "record",
                "-r",
                "500",
                "-d",
                str(args.seconds),
                "-f",
                "raw",
                "-o",
                str(out),
                "-p",
                str(node.proc.pid),
            ] + (["--native"] if args.native else [])
            spies[role] = (
                subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
                out,
            )
        for proc, _ in spies.values():
            proc.wait()
        client.wait()
        srv.kill()
        for role, (_, out) in spies.items():
            print(f"== {role} daemon, {args.load} load: own time by function")
            for fn, pct in top(out):
                print(f"  {pct:5.1f}%  {fn}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
