"""The soak's periodic check of a whole LAN (scripts/soak.py), run with the
faults paused: every pair of hosts pings, a checksummed transfer between a
random pair completes, no address is held twice, and each daemon's RSS and
open file descriptors are read (compared with the first check: growth
after warm-up)."""

from __future__ import annotations

import os
import random
import subprocess
import threading
from dataclasses import dataclass, field

from ..core.status import Status
from ..errors import LabError
from .checks import TransferRun
from .hosts import Node
from .procstat import rss_mb

PING_TRIES = 4  # a pair gets this many pings (1 s each) to answer one


@dataclass
class Check:
    pairs: int = 0
    failed_pairs: list[str] = field(default_factory=list)
    transfer: str = ""  # "" ok, else why not
    duplicates: list[str] = field(default_factory=list)
    not_ready: list[str] = field(default_factory=list)
    tracebacks: list[str] = field(default_factory=list)  # daemons that logged one
    rss: dict[int, float] = field(default_factory=dict)  # pid -> MiB
    fds: dict[int, int] = field(default_factory=dict)  # pid -> open fds

    @property
    def ok(self) -> bool:
        return not (self.failed_pairs or self.transfer or self.duplicates or self.not_ready
                    or self.tracebacks)  # fmt: skip


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def _ping_all(src: Node, targets: list[str]) -> list[str]:
    """The targets ``src`` cannot ping (each gets PING_TRIES tries)."""
    script = " ".join(
        f"(for i in $(seq {PING_TRIES}); do ping -n -q -c 1 -W 1 {t} >/dev/null 2>&1 && exit; "
        f"sleep 0.5; done; echo {t}) &" for t in targets
    ) + " wait"  # fmt: skip
    try:
        out = src.ns.run("sh", "-c", script, timeout=PING_TRIES * 2 + 20, check=False).stdout
    except LabError as e:
        return [f"{t} ({e})" for t in targets]
    return out.split()


def pings(hosts: list[Node]) -> tuple[int, list[str]]:
    """Every ordered pair of hosts: how many, and those that failed."""
    failed: list[str] = []
    lock = threading.Lock()

    def one(src: Node) -> None:
        bad = _ping_all(src, [h.ip for h in hosts if h is not src])
        with lock:
            failed.extend(f"{src.ip}->{t}" for t in bad)

    threads = [threading.Thread(target=one, args=(h,)) for h in hosts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(hosts) * (len(hosts) - 1), failed


def duplicates(hosts: list[Node]) -> list[str]:
    """Addresses held by two hosts (by their TAPs, leases included), and
    duplicate-address problems the daemons report."""
    holder: dict[str, str] = {}
    out = []
    for h in hosts:
        st = Status.from_json(h.status())
        for a in st.addresses:
            ip = str(a).split("/")[0]
            if ip.startswith("fe80:"):
                continue
            if ip in holder:
                out.append(f"{ip} on {holder[ip]} and {h.dev}")
            holder[ip] = h.dev
        out += [f"{h.dev} says duplicate {d.get('address')}"
                for d in st.duplicate_addresses]  # fmt: skip
    return out


def check(hosts: list[Node], rng: random.Random, mib: int, port: int) -> Check:
    c = Check()
    for h in hosts:
        if h.proc is None or h.proc.poll() is not None:
            c.not_ready.append(f"{h.dev} not running")
        else:
            c.rss[h.proc.pid] = rss_mb(h.proc.pid)
            c.fds[h.proc.pid] = open_fds(h.proc.pid)
        if any("Traceback (most recent call last)" in x for x in list(h.lines)):
            c.tracebacks.append(f"{h.dev} logged a traceback")
    c.pairs, c.failed_pairs = pings(hosts)
    src, dst = rng.sample(hosts, 2)
    try:
        t = TransferRun(src, dst, mib, port=port).start().result(120)
        if not t.ok:
            c.transfer = f"{src.dev}->{dst.dev}: checksum or length differs"
    except (LabError, subprocess.SubprocessError) as e:
        c.transfer = f"{src.dev}->{dst.dev}: {e}"
    try:
        c.duplicates = duplicates(hosts)
    except OSError as e:
        c.duplicates = [f"status unreadable: {e}"]
    return c
