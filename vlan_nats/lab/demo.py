"""``vlan-nats demo``: three hosts on one virtual LAN, checked end to end.

A private nats-server on a random loopback port, three namespaces with
unique names and one daemon each (``--netns``), addresses from
198.18.0.0/15; then IPv4 ping between all pairs, IPv6 link-local ping, a
TCP transfer with its throughput and checksum.  Everything is removed at
the end, on failure and on Ctrl-C too.  Exit 0 only if every check passed.
"""

from __future__ import annotations

import itertools
import shutil
import signal
import sys
from collections.abc import Callable

from ..errors import LabError
from .checks import ping, transfer
from .hosts import Lab

Row = tuple[str, bool, str]


def _need_tools() -> None:
    missing = [t for t in ("ip", "ping") if shutil.which(t) is None]
    if missing:
        raise LabError(
            f"missing tools: {', '.join(missing)} (apt-get install iproute2 iputils-ping)"
        )


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _datapaths(lab: Lab) -> str:
    """Which datapath each daemon said it runs, and why (its INFO line)."""
    said = set()
    for n in lab.nodes:
        line = next((ln for ln in n.lines if "vlan_nats.daemon: datapath " in ln), "")
        said.add(line.split("vlan_nats.daemon: datapath ", 1)[-1] if line else "unknown")
    if len(said) == 1:
        return f"{said.pop()} on all {len(lab.nodes)} hosts"
    return "; ".join(sorted(said))


def run_demo(transfer_mb: int = 100, out: Callable[[str], None] = print) -> int:
    _need_tools()
    # Whatever we inherited (a background job ignores SIGINT): Ctrl-C and
    # SIGTERM unwind through Lab.__exit__, which removes everything.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    rows: list[Row] = []

    def record(name: str, ok: bool, detail: str) -> None:
        rows.append((name, ok, detail))
        out(f"  {'ok  ' if ok else 'FAIL'}  {name:<34} {detail}")

    out("vlan-nats demo: starting nats-server and 3 hosts ...")
    with Lab(3, tag="vnd", subnet="198.18.0") as lab:
        out(
            f"  nats-server {lab.server.url}; hosts "
            + ", ".join(f"{n.ns.name}({n.dev} {n.address})" for n in lab.nodes)
        )
        out(f"  datapath: {_datapaths(lab)}")
        for a, b in itertools.permutations(lab.nodes, 2):
            r = ping(a.ns, b.ip, count=3)
            record(
                f"ipv4 ping {a.ip} -> {b.ip}",
                r.ok,
                f"{r.received}/{r.sent} replies, avg {r.avg_ms} ms",
            )
        h1, h2, h3 = lab.nodes
        h1.link_local()  # both ends done with DAD
        ll = h2.link_local()
        r = ping(h1.ns, f"{ll}%{h1.dev}", count=3)
        record(
            f"ipv6 link-local ping h1 -> {ll}",
            r.ok,
            f"{r.received}/{r.sent} replies, avg {r.avg_ms} ms",
        )
        try:
            t = transfer(h1, h3, transfer_mb)
            record(
                f"tcp {transfer_mb} MiB {h1.ip} -> {h3.ip}",
                t.ok,
                f"{t.mbit_s:.0f} Mbit/s in {t.seconds:.2f} s, sha256 "
                + ("match" if t.ok else "MISMATCH"),
            )
        except LabError as e:
            record(f"tcp {transfer_mb} MiB {h1.ip} -> {h3.ip}", False, str(e))
    failed = [r for r in rows if not r[1]]
    out(
        f"vlan-nats demo: {len(rows) - len(failed)}/{len(rows)} checks passed; "
        + ("all checks passed" if not failed else "FAILED")
        + "; cleaned up"
    )
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(run_demo())
