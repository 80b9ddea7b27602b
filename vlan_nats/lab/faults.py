"""Random faults for the soak (scripts/soak.py): a thread that every few
seconds does one of these to a random victim, and undoes it a few seconds
later:

- ``server_kill`` / ``server_stop``: kill -9 (started again) or SIGSTOP
  (SIGCONT) one server of the cluster; one server at a time, so JetStream
  (R3) keeps its quorum;
- ``host_kill`` / ``host_stop``: the same to a host's daemon (started again
  with its address; its MAC is derived, so it comes back as itself);
- ``ipam_kill`` / ``ipam_stop``: the same to one address-service instance;
  one at a time, so one always serves;
- ``link_flap``: a host's TAP down, then up;
- ``address_change``: a host with a static address moves to its other
  address (``.i`` <-> ``.64+i``), at once.

At most ``max_hosts`` hosts are faulted at once.  ``pause()`` stops new
faults and undoes every fault in effect (the checks run on a whole LAN);
``resume()`` goes on.  Every fault is counted by kind.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import LabError
from .hosts import Node
from .ipamproc import IpamProcess
from .natsserver import NatsServer

KINDS = ("server_kill", "server_stop", "host_kill", "host_stop", "ipam_kill", "ipam_stop",
         "link_flap", "address_change")  # fmt: skip


@dataclass
class Active:
    kind: str
    victim: object
    undo: Callable[[], object]
    until: float


def other_address(node: Node, subnet: str, i: int) -> str:
    """Host ``i``'s other static address: .i <-> .64+i (same prefix)."""
    plen = node.address.split("/")[1]
    first, second = f"{subnet}.{i}/{plen}", f"{subnet}.{64 + i}/{plen}"
    return second if node.address == first else first


class Faults:
    def __init__(
        self,
        servers: list[NatsServer],
        hosts: list[Node],
        static: list[int],  # indexes into hosts with a static address (address_change)
        ipams: list[IpamProcess],
        subnet: str,
        every: float = 3.0,
        max_hosts: int = 3,
        seed: int | None = None,
    ) -> None:
        self.servers, self.hosts, self.static, self.ipams = servers, hosts, static, ipams
        self.subnet = subnet
        self.every = every
        self.max_hosts = max_hosts
        self.rng = random.Random(seed)
        self.count: Counter[str] = Counter()
        self.errors: list[str] = []
        self.log: list[str] = []  # lines for the report, taken by the reader
        self._active: list[Active] = []
        self._lock = threading.Lock()
        self._running = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="faults", daemon=True)

    def start(self) -> Faults:
        self._running.set()
        self._thread.start()
        return self

    def pause(self) -> None:
        """No new fault; every fault in effect undone."""
        self._running.clear()
        with self._lock:
            active, self._active = self._active, []
        for a in active:
            self._undo(a)

    def resume(self) -> None:
        self._running.set()

    def stop(self) -> None:
        self._stop.set()
        self._running.set()
        self._thread.join(timeout=30)
        self.pause()

    # -- the thread -----------------------------------------------------------
    def _run(self) -> None:
        next_at = time.monotonic() + self.every
        while not self._stop.is_set():
            self._running.wait()
            if self._stop.wait(0.2):
                return
            now = time.monotonic()
            self._expire(now)
            if now < next_at or not self._running.is_set():
                continue
            next_at = now + self.rng.uniform(0.5, 1.5) * self.every
            try:
                self._inject(now)
            except (LabError, OSError) as e:
                self.errors.append(f"{e}")

    def _expire(self, now: float) -> None:
        with self._lock:
            due = [a for a in self._active if a.until <= now]
            self._active = [a for a in self._active if a.until > now]
        for a in due:
            self._undo(a)

    def _undo(self, a: Active) -> None:
        try:
            a.undo()
        except (LabError, OSError) as e:
            self.errors.append(f"undo {a.kind}: {e}")

    def _busy(self, victims: list[object]) -> set[int]:
        with self._lock:
            return {id(a.victim) for a in self._active if a.victim in victims}

    def _inject(self, now: float) -> None:
        kind = self.rng.choice(KINDS)
        group: list[object]
        if kind.startswith("server"):
            group, limit = list(self.servers), 1
        elif kind.startswith("ipam"):
            group, limit = list(self.ipams), 1
        elif kind == "address_change":
            group, limit = [self.hosts[i] for i in self.static], self.max_hosts
        else:
            group, limit = list(self.hosts), self.max_hosts
        busy = self._busy(group)
        free = [v for v in group if id(v) not in busy]
        if len(busy) >= limit or not free:
            return
        victim = self.rng.choice(free)
        undo = getattr(self, f"_{kind}")(victim)
        self.count[kind] += 1
        self.log.append(f"{kind} {_name(victim)}")
        if undo is not None:
            with self._lock:
                self._active.append(Active(kind, victim, undo, now + self.rng.uniform(2, 8)))

    # -- the faults: each does it and returns how to undo it ------------------
    def _server_kill(self, s: NatsServer) -> Callable[[], object]:
        s.kill()
        return lambda: s.start()

    def _server_stop(self, s: NatsServer) -> Callable[[], object]:
        return _stop_cont(s.proc)

    def _host_kill(self, n: Node) -> Callable[[], object]:
        n.stop(signal.SIGKILL)
        return lambda: n.start(timeout=30)

    def _host_stop(self, n: Node) -> Callable[[], object]:
        return _stop_cont(n.proc)

    def _ipam_kill(self, p: IpamProcess) -> Callable[[], object]:
        p.stop(signal.SIGKILL)
        return lambda: p.start(timeout=30)

    def _ipam_stop(self, p: IpamProcess) -> Callable[[], object]:
        return _stop_cont(p.proc)

    def _link_flap(self, n: Node) -> Callable[[], object]:
        n.ns.run("ip", "link", "set", "dev", n.dev, "down")
        return lambda: n.ns.run("ip", "link", "set", "dev", n.dev, "up")

    def _address_change(self, n: Node) -> None:
        i = self.hosts.index(n) + 1
        new = other_address(n, self.subnet, i)
        # Deleting a primary address deletes its secondaries too: the old
        # one goes first.
        n.ns.run("ip", "addr", "del", n.address, "dev", n.dev)
        n.ns.run("ip", "addr", "add", new, "dev", n.dev)
        n.address = new  # a restart starts with it


def _stop_cont(proc: object) -> Callable[[], object]:
    if proc is None or proc.poll() is not None:  # type: ignore[attr-defined]
        raise LabError("nothing to stop")
    proc.send_signal(signal.SIGSTOP)  # type: ignore[attr-defined]
    return lambda: proc.send_signal(signal.SIGCONT)  # type: ignore[attr-defined]


def _name(victim: object) -> str:
    if isinstance(victim, Node):
        return victim.dev
    if isinstance(victim, NatsServer):
        return f"server:{victim.port}"
    return "ipam"
