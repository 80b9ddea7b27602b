"""``vlan-nats demo``: three hosts on one virtual LAN, checked end to end.

A private nats-server with JetStream on a random loopback port; the
network defined once (``vlan-nats network set 0 pool=198.18.0.0/24``); an
address service (``vlan-nats ipam``, serving the definition's pool); three
namespaces with unique names and one daemon each (``--netns``, ``--address
auto``); then IPv4 ping between all pairs (while every TAP is watched for
ARP: routed ARP's deliveries against what broadcast would cost), IPv6
link-local ping, a TCP transfer with its throughput and checksum; then the
network's MTU raised to 9000 with one ``vlan-nats network set``, every node
following live, proven by a jumbo ping with DF set; and ``network show``.
Everything is removed at the end, on failure and on Ctrl-C too.  Exit 0
only if every check passed.
"""

from __future__ import annotations

import itertools
import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable

from ..errors import LabError
from .arpwatch import ArpSeen, ArpWatch
from .checks import ping, transfer, wait_until
from .hosts import Lab, Node
from .ipamproc import IpamProcess
from .natsserver import NatsServer

POOL = "198.18.0.0/24"

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

    out("vlan-nats demo: starting nats-server (JetStream), an address service and 3 hosts ...")
    server = NatsServer(jetstream=True)
    with Lab(0, tag="vnd", server=server) as lab:
        network(server.url, "set", "0", f"pool={POOL}", "description=vlan-nats demo")
        with IpamProcess(server.url, "0", None, "--lease", "600") as service:
            try:
                for i in (1, 2, 3):
                    lab.add_node(i, extra=["--address", "auto"])
                if _addresses(lab, record):
                    _checks(lab, record, out, transfer_mb)
                    _jumbo(lab, record, out)
                else:
                    for line in service.lines[-5:]:
                        out(f"  address service: {line}")
            finally:
                for n in lab.nodes:  # before the service: they give their leases back
                    n.stop()
    return _summary(rows, out)


Record = Callable[[str, bool, str], None]


def _addresses(lab: Lab, record: Record) -> bool:
    for n in lab.nodes:
        try:
            n.wait_lease()
            record(f"address for {n.ns.name}", True, f"{n.address} from the address service")
        except LabError as e:
            record(f"address for {n.ns.name}", False, str(e).splitlines()[0])
    return all(n.address for n in lab.nodes)


def _checks(lab: Lab, record: Record, out: Callable[[str], None], transfer_mb: int) -> None:
    out(
        f"  nats-server {lab.server.url}; hosts "
        + ", ".join(f"{n.ns.name}({n.dev} {n.address})" for n in lab.nodes)
    )
    out(f"  datapath: {_datapaths(lab)}")
    watches = [ArpWatch(n.ns, n.dev) for n in lab.nodes]
    try:
        for a, b in itertools.permutations(lab.nodes, 2):
            r = ping(a.ns, b.ip, count=3)
            record(
                f"ipv4 ping {a.ip} -> {b.ip}",
                r.ok,
                f"{r.received}/{r.sent} replies, avg {r.avg_ms} ms",
            )
    finally:
        seen = [w.stop() for w in watches]
    record(*_arp_figures(lab, seen))
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


def network(url: str, *args: str) -> str:
    """``vlan-nats network ...`` as a user runs it: its output."""
    r = subprocess.run([sys.executable, "-m", "vlan_nats", "network", *args, "--server", url],
                       capture_output=True, text=True, timeout=30)  # fmt: skip
    if r.returncode != 0:
        raise LabError(f"vlan-nats network {' '.join(args)}: {r.stderr.strip()}")
    return r.stdout


def _mtu(node: Node) -> int:
    out = node.ns.run("ip", "-o", "link", "show", node.dev).stdout
    return int(out.split(" mtu ")[1].split()[0])


def _jumbo(lab: Lab, record: Record, out: Callable[[str], None]) -> None:
    """The network's MTU raised once, for every node, live."""
    url = lab.server.url
    out("  $ vlan-nats network set 0 mtu=9000")
    t0 = time.monotonic()
    try:
        network(url, "set", "0", "mtu=9000")
    except LabError as e:
        record("network mtu 9000, live", False, str(e))
        return
    ok = wait_until(lambda: all(_mtu(n) == 9000 for n in lab.nodes), 5, 0.02)
    took = time.monotonic() - t0
    record("network mtu 9000, live", ok,
           f"{len(lab.nodes)} nodes at {'9000' if ok else [_mtu(n) for n in lab.nodes]} "
           f"{took:.2f} s after network set")  # fmt: skip
    h1, _, h3 = lab.nodes
    r = ping(h1.ns, h3.ip, count=3, size=8972, dont_fragment=True)
    record(f"jumbo ping {h1.ip} -> {h3.ip}", r.ok,
           f"8972 bytes, DF set: {r.received}/{r.sent} replies")  # fmt: skip
    # Every member has written its entry again, at the new revision and MTU.
    rev = json.loads(network(url, "show", "0", "--json"))["definition"]["revision"]
    wait_until(lambda: all((m["revision"], m["mtu"]) == (rev, 9000) for m in
                           json.loads(network(url, "show", "0", "--json"))["members"]), 5, 0.2)
    out("  $ vlan-nats network show 0")
    for line in network(url, "show", "0").splitlines():
        out(f"    {line}")
    view = json.loads(network(url, "show", "0", "--json"))
    live = [m for m in view["members"] if not m["gone"]]
    record("network show", len(live) == len(lab.nodes) and not view["problems"],
           f"revision {view['definition']['revision']}, {len(live)} members, "
           f"{len(view['leases'])} leases, problems: {view['problems'] or 'none'}")  # fmt: skip


def _arp_figures(lab: Lab, seen: list[list[ArpSeen]]) -> Row:
    """Routed ARP at work: requests the hosts' TAPs received per resolution,
    against the n-1 a broadcast reaches."""
    asked = sum(_counter(n, "arp_routed") for n in lab.nodes)
    delivered = sum(1 for s in itertools.chain(*seen) if s.op == 1 and not s.gratuitous)
    others = len(lab.nodes) - 1
    per = delivered / asked if asked else 0.0
    return (
        "routed arp",
        asked > 0 and delivered < asked * others,
        f"{asked} requests routed, {delivered} delivered: {per:.1f} per resolution "
        f"(broadcast: {others})",
    )


def _counter(node: Node, name: str) -> int:
    counters = node.status().get("counters")
    return int(counters.get(name, 0)) if isinstance(counters, dict) else 0


def _summary(rows: list[Row], out: Callable[[str], None]) -> int:
    failed = [r for r in rows if not r[1]]
    out(
        f"vlan-nats demo: {len(rows) - len(failed)}/{len(rows)} checks passed; "
        + ("all checks passed" if not failed else "FAILED")
        + "; cleaned up"
    )
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(run_demo())
