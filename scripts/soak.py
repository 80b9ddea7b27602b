#!/usr/bin/env python3
"""Soak: many hosts, a server cluster and random faults for a long time.

    sudo scripts/soak.sh 30m [--hosts 16] [--servers 3] [--ipam 2] [--fault-every 3]

A cluster of --servers nats-servers with JetStream (the network's buckets
with replicas 3), --ipam address-service instances and --hosts hosts (the
last --auto of them take their address from the address service).  Every
--fault-every seconds or so, one random fault (vlan_nats/lab/faults.py):
kill -9 or SIGSTOP of a server, a host's daemon or an address-service
instance, a link flap, an address change; each undone a few seconds later.
Every --check-every seconds the faults pause and are undone, and the whole
LAN is checked (vlan_nats/lab/soakcheck.py): every pair of hosts pings, a
checksummed --mib MiB transfer between a random pair completes, no address
is held twice, and each daemon's RSS and open fds are read; one line per
check.  The summary gives the faults by kind, the checks passed, and the
RSS and fd growth of each daemon after the first check (the warm-up).
Exit 0 when every check passed, no fault failed to be made or undone, no
daemon logged a traceback and none grew by more than RSS_GROWTH_MIB or
FD_GROWTH.  Everything is removed, on failure and
Ctrl-C too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import re
import sys
import time
from collections import Counter

import nats

from vlan_nats.aio import netkv
from vlan_nats.core.subjects import SubjectScheme
from vlan_nats.errors import LabError
from vlan_nats.lab.faults import Faults
from vlan_nats.lab.hosts import Lab, Node
from vlan_nats.lab.ipamproc import IpamProcess
from vlan_nats.lab.natsserver import JetStreamCluster
from vlan_nats.lab.soakcheck import Check, check

# Growth of a daemon after warm-up beyond which the soak fails.
RSS_GROWTH_MIB = 10.0
FD_GROWTH = 4
SUBNET = "198.18.56"  # static hosts .1-.63 and .65-.127 (lab/faults.py) ...
POOL = f"{SUBNET}.0/24"
RANGE = f"{SUBNET}.128-{SUBNET}.254"  # ... leases from .128 up


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
    ap.add_argument("--hosts", type=int, default=16)
    ap.add_argument("--auto", type=int, default=4, help="hosts with --address auto")
    ap.add_argument("--servers", type=int, default=3)
    ap.add_argument("--ipam", type=int, default=2, help="address-service instances")
    ap.add_argument("--fault-every", type=seconds, default=3.0)
    ap.add_argument("--check-every", type=seconds, default=30.0)
    ap.add_argument("--mib", type=int, default=20, help="size of each check's transfer")
    ap.add_argument("--dataplane", choices=("c", "python"), default=None)
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    if not 2 <= args.hosts <= 60 or not 0 <= args.auto <= args.hosts - 2:
        ap.error("--hosts 2..60, --auto 0..hosts-2")
    return args


async def _buckets(urls: list[str], replicas: int) -> None:
    """The network's definition and members buckets with ``replicas``, as
    an operator makes them for a cluster (the daemons use them as they are)."""
    nc = await nats.connect(urls, connect_timeout=5)
    try:
        await netkv.definitions(nc, "vlan", replicas=replicas)
        await netkv.members(nc, SubjectScheme("vlan", "0"), replicas=replicas)
    finally:
        await nc.close()


def start_hosts(lab: Lab, args: argparse.Namespace, urls: list[str]) -> list[int]:
    """All hosts, started together; the indexes of those with a static address."""
    static = []
    for i in range(1, args.hosts + 1):
        servers = [x for k in range(len(urls)) for x in ("--server", urls[(i + k) % len(urls)])]
        auto = i > args.hosts - args.auto
        node = lab.add_node(i, [*servers, *(["--address", "auto"] if auto else [])],
                            start=False, derived_mac=True)  # fmt: skip
        if not auto:
            static.append(i - 1)
        node.start(timeout=0)
    for node in lab.nodes:
        node.wait_ready(60)
        if not node.address:
            node.wait_lease(60)
    return static


def settle(lab: Lab, cluster: JetStreamCluster, timeout: float = 60.0) -> None:
    """Until the cluster has JetStream's leader and every daemon is connected."""
    deadline = time.monotonic() + timeout

    def connected(n: Node) -> bool:
        try:
            st = n.status()
        except OSError:
            return False
        data = st.get("data_connection") or {"connected": True}
        return bool(st.get("connected")) and bool(data.get("connected"))  # type: ignore[union-attr]

    while time.monotonic() < deadline:
        if cluster.ready() and all(connected(n) for n in lab.nodes):
            return
        time.sleep(0.5)


def line(t: float, c: Check, faults: Faults) -> str:
    rss, fds = list(c.rss.values()) or [0.0], list(c.fds.values()) or [0]
    bad = [*_worst(c.failed_pairs), *([c.transfer] if c.transfer else []), *c.duplicates,
           *c.not_ready, *c.tracebacks]  # fmt: skip
    return (f"{t:6.0f}s {sum(faults.count.values()):6} {c.pairs - len(c.failed_pairs):4}/"
            f"{c.pairs:<4} {'ok' if not c.transfer else 'FAIL':>4} {len(c.duplicates):3} "
            f"{min(rss):5.1f}-{max(rss):<5.1f} {min(fds):3}-{max(fds):<3} "
            f"{'ok' if c.ok else 'FAILED: ' + '; '.join(bad)}")  # fmt: skip


def _worst(failed: list[str]) -> list[str]:
    """Failed pairs by the address in most of them: "198.18.56.7 in 30"."""
    ends = Counter(a for pair in failed for a in pair.split("->"))
    return [f"{a} in {n} failed pairs" for a, n in ends.most_common(3)]


def growth(checks: list[Check]) -> tuple[float, int, int]:
    """The largest RSS (MiB) and fd growth of a daemon between its first
    check and its last, and how many daemons were seen in two checks."""
    first_rss: dict[int, float] = {}
    first_fds: dict[int, int] = {}
    last_rss: dict[int, float] = {}
    last_fds: dict[int, int] = {}
    for c in checks:
        for pid, v in c.rss.items():
            first_rss.setdefault(pid, v)
            last_rss[pid] = v
        for pid, n in c.fds.items():
            first_fds.setdefault(pid, n)
            last_fds[pid] = n
    seen = [pid for pid in last_rss if sum(pid in c.rss for c in checks) >= 2]
    rss = max((last_rss[p] - first_rss[p] for p in seen), default=0.0)
    fds = max((last_fds[p] - first_fds[p] for p in seen), default=0)
    return rss, fds, len(seen)


def soak(args: argparse.Namespace, cluster: JetStreamCluster, lab: Lab,
         ipams: list[IpamProcess]) -> int:  # fmt: skip
    rng = random.Random(args.seed)
    static = start_hosts(lab, args, cluster.urls)
    faults = Faults(cluster.servers, lab.nodes, static, ipams, SUBNET, every=args.fault_every,
                    seed=rng.randrange(1 << 30)).start()  # fmt: skip
    checks: list[Check] = []
    start = time.monotonic()
    print(f"{'time':>7} {'faults':>6} {'pairs ok':>9} {'xfer':>4} dup {'RSS MB':>11} "
          f"{'fds':>7} check", flush=True)  # fmt: skip
    try:
        while time.monotonic() - start < args.duration:
            time.sleep(max(0.0, min(args.check_every, args.duration - (time.monotonic() - start))))
            faults.pause()
            settle(lab, cluster)
            while faults.log:
                print("   ", faults.log.pop(0))
            c = check(lab.nodes, rng, args.mib, 5300 + len(checks) % 50)
            checks.append(c)
            print(line(time.monotonic() - start, c, faults), flush=True)
            faults.resume()
    finally:
        faults.stop()
    rss, fds, seen = growth(checks)
    passed = sum(c.ok for c in checks)
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(faults.count.items()))
    print(f"summary: {time.monotonic() - start:.0f} s, {args.hosts} hosts, {args.servers} "
          f"servers, {args.ipam} address services; faults {sum(faults.count.values())} "
          f"({kinds}); checks {passed}/{len(checks)} passed; pairs "
          f"{sum(c.pairs - len(c.failed_pairs) for c in checks)}/{sum(c.pairs for c in checks)}; "
          f"transfers {sum(not c.transfer for c in checks)}/{len(checks)} of {args.mib} MiB; "
          f"growth after warm-up (largest of {seen} daemons): RSS {rss:+.1f} MiB, fds {fds:+d}; "
          f"fault errors {len(faults.errors)}", flush=True)  # fmt: skip
    for e in faults.errors:
        print("fault error:", e)
    flat = rss <= RSS_GROWTH_MIB and fds <= FD_GROWTH
    if not flat:
        print(f"soak: a daemon grew more than {RSS_GROWTH_MIB:g} MiB or {FD_GROWTH} fds")
    ok = checks and passed == len(checks) and not faults.errors and flat
    return 0 if ok else 1


def main() -> int:
    args = parse_args()
    with contextlib.ExitStack() as stack:
        cluster = stack.enter_context(JetStreamCluster(args.servers))
        asyncio.run(_buckets(cluster.urls, min(3, args.servers)))
        servers = [x for u in cluster.urls for x in ("--server", u)]
        ipams = []
        for _ in range(args.ipam):
            p = IpamProcess(cluster.urls[0], "0", POOL, *servers[2:], "--range", RANGE,
                            "--replicas", str(min(3, args.servers)))  # fmt: skip
            stack.callback(p.stop)
            ipams.append(p.start(30))
        lab = stack.enter_context(Lab(0, tag="vnk", subnet=SUBNET, server_urls=cluster.urls,
                                      dataplane=args.dataplane))  # fmt: skip
        return soak(args, cluster, lab, ipams)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("soak: interrupted; cleaned up", file=sys.stderr)
        sys.exit(130)
    except LabError as e:
        print(f"soak: {e}", file=sys.stderr)
        sys.exit(1)
