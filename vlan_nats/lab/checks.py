"""Checks run across the virtual LAN: ping and a checksummed TCP transfer."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import LabError
from .hosts import Namespace, Node

_STATS_RE = re.compile(r"(\d+) packets transmitted, (\d+) received")
_RTT_RE = re.compile(r"= ([\d.]+)/([\d.]+)/([\d.]+)/")


@dataclass(frozen=True)
class PingResult:
    sent: int
    received: int
    avg_ms: float | None
    output: str

    @property
    def ok(self) -> bool:
        return self.sent > 0 and self.received == self.sent


def ping(
    ns: Namespace,
    target: str,
    count: int = 3,
    interval: float = 0.2,
    size: int | None = None,
    dont_fragment: bool = False,
    deadline: float = 10.0,
) -> PingResult:
    argv = ["ping", "-n", "-c", str(count), "-i", str(interval), "-w", str(max(1, round(deadline)))]
    if size is not None:
        argv += ["-s", str(size)]
    if dont_fragment:
        argv += ["-M", "do"]
    res = ns.run(*argv, target, timeout=deadline + 5, check=False)
    out = res.stdout + res.stderr
    m = _STATS_RE.search(out)
    rtt = _RTT_RE.search(out)
    return PingResult(
        int(m.group(1)) if m else 0,
        int(m.group(2)) if m else 0,
        float(rtt.group(2)) if rtt else None,
        out.strip(),
    )


def wait_listening(ns: Namespace, port: int, timeout: float = 10.0) -> None:
    """Wait until something listens on TCP ``port`` in ``ns``."""
    deadline = time.monotonic() + timeout
    while f":{port} " not in ns.run("ss", "-Htln", check=False).stdout:
        if time.monotonic() > deadline:
            raise LabError(f"nothing listens on port {port} in {ns.name}")
        time.sleep(0.05)


def wait_until(cond: Callable[[], object], timeout: float = 5.0, interval: float = 0.05) -> bool:
    """Poll ``cond`` until it is true (True) or ``timeout`` passes (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(interval)
    return False


def wait_ping(ns: Namespace, target: str, timeout: float = 10.0) -> PingResult:
    """Ping once a second until one reply (e.g. after a restart)."""
    return ping(ns, target, count=1, interval=1, deadline=timeout)


@dataclass(frozen=True)
class Transfer:
    mib: int
    seconds: float
    sent_sha256: str
    recv_sha256: str
    recv_bytes: int

    @property
    def ok(self) -> bool:
        return self.sent_sha256 == self.recv_sha256 and self.recv_bytes == self.mib << 20

    @property
    def mbit_s(self) -> float:
        return self.recv_bytes * 8 / self.seconds / 1e6 if self.seconds else 0.0


class TransferRun:
    """A checksummed TCP transfer running in the background (``start`` it,
    do something to the LAN, then ``result``)."""

    def __init__(
        self, src: Node, dst: Node, mib: int, port: int = 5201, rate_mib_s: float = 0.0
    ) -> None:
        self.src, self.dst, self.mib, self.port, self.rate = src, dst, mib, port, rate_mib_s
        self._rx: subprocess.Popen[str] | None = None
        self._tx: subprocess.Popen[str] | None = None

    def start(self) -> TransferRun:
        xfer = [sys.executable, "-m", "vlan_nats.lab.xfer"]
        self._rx = self.dst.ns.popen(
            *xfer,
            "recv",
            self.dst.ip,
            str(self.port),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert self._rx.stdout is not None
        if self._rx.stdout.readline().strip() != "listening":
            err = self._rx.stderr.read() if self._rx.stderr else ""
            self._kill()
            raise LabError(f"transfer receiver did not start: {err}")
        args = [str(self.mib)] + ([str(self.rate)] if self.rate else [])
        self._tx = self.src.ns.popen(
            *xfer,
            "send",
            self.dst.ip,
            str(self.port),
            *args,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        return self

    def result(self, timeout: float = 120.0) -> Transfer:
        assert self._rx is not None and self._tx is not None
        try:
            tx_out, tx_err = self._tx.communicate(timeout=timeout)
            rx_out, rx_err = self._rx.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise LabError(f"transfer of {self.mib} MiB timed out after {timeout}s") from None
        finally:
            self._kill()
        try:
            sent, got = json.loads(tx_out), json.loads(rx_out)
        except json.JSONDecodeError:
            raise LabError(f"transfer failed: {tx_out} {tx_err} {rx_out} {rx_err}") from None
        if "error" in sent or "error" in got:
            raise LabError(f"transfer failed: sender={sent} receiver={got}")
        return Transfer(
            self.mib,
            float(sent["seconds"]),
            str(sent["sha256"]),
            str(got["sha256"]),
            int(got["bytes"]),
        )

    def _kill(self) -> None:
        for p in (self._tx, self._rx):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()


def transfer(src: Node, dst: Node, mib: int, port: int = 5201, timeout: float = 120.0) -> Transfer:
    """Send ``mib`` MiB from ``src`` to ``dst`` over TCP and compare checksums."""
    return TransferRun(src, dst, mib, port).start().result(timeout)


class PingLog:
    """A background ``ping -D`` whose replies give the longest outage.
    Replies are collected as they come, so a test can wait for them."""

    def __init__(self, ns: Namespace, target: str, interval: float = 0.05) -> None:
        self.interval = interval
        self.times: list[float] = []
        self._more = threading.Condition()
        self._proc = ns.popen(
            "ping",
            "-n",
            "-D",
            "-W",
            "1",
            "-i",
            str(interval),
            target,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            m = _REPLY_RE.match(line)
            if m:
                with self._more:
                    self.times.append(float(m.group(1)))
                    self._more.notify_all()

    def wait(self, replies: int, timeout: float = 15.0) -> None:
        """Until ``replies`` more replies than now have come (LabError after
        ``timeout``)."""
        with self._more:
            want = len(self.times) + replies
            if not self._more.wait_for(lambda: len(self.times) >= want, timeout):
                raise LabError(f"ping: {len(self.times)} of {want} replies in {timeout} s")

    def stop(self) -> list[float]:
        """Stop pinging; the arrival times of the replies (seconds)."""
        self._proc.send_signal(signal.SIGINT)
        self._proc.wait(timeout=10)
        self._reader.join(timeout=10)
        return list(self.times)

    @staticmethod
    def longest_gap(times: list[float]) -> float:
        """Longest time between consecutive replies (0 without two replies)."""
        return max((b - a for a, b in zip(times, times[1:], strict=False)), default=0.0)


_REPLY_RE = re.compile(r"^\[(\d+\.\d+)\] \d+ bytes from", re.M)


_UDP_STREAM = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
dst, rate, size = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
data, t = bytes(size), time.monotonic()
while True:
    for _ in range(max(1, int(rate / 100))):
        try:
            s.sendto(data, (dst, 9))
        except OSError:
            pass
    t += 0.01
    time.sleep(max(0.0, t - time.monotonic()))
"""


def udp_stream(ns: Namespace, dst: str, rate: float, size: int) -> subprocess.Popen[str]:
    """UDP datagrams of ``size`` bytes to ``dst`` port 9 (discard; a
    broadcast address too), ``rate`` a second, from inside ``ns`` until
    killed.  Unlike ``ping -i``, it keeps sending when nothing answers."""
    return ns.popen(sys.executable, "-c", _UDP_STREAM, dst, str(rate), str(size),
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
