"""Checks run across the virtual LAN: ping and a checksummed TCP transfer."""

from __future__ import annotations

import json
import re
import subprocess
import sys
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


def transfer(src: Node, dst: Node, mib: int, port: int = 5201, timeout: float = 120.0) -> Transfer:
    """Send ``mib`` MiB from ``src`` to ``dst`` over TCP and compare checksums."""
    xfer = [sys.executable, "-m", "vlan_nats.lab.xfer"]
    rx = dst.ns.popen(
        *xfer, "recv", dst.ip, str(port), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert rx.stdout is not None
        if rx.stdout.readline().strip() != "listening":
            raise LabError(
                f"transfer receiver did not start: {rx.stderr.read() if rx.stderr else ''}"
            )
        tx = src.ns.run(*xfer, "send", dst.ip, str(port), str(mib), timeout=timeout, check=False)
        rx_out, rx_err = rx.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise LabError(f"transfer of {mib} MiB timed out after {timeout}s") from None
    finally:
        if rx.poll() is None:
            rx.kill()
            rx.wait()
    try:
        sent, got = json.loads(tx.stdout), json.loads(rx_out)
    except json.JSONDecodeError:
        raise LabError(f"transfer failed: {tx.stdout} {tx.stderr} {rx_out} {rx_err}") from None
    if "error" in sent or "error" in got:
        raise LabError(f"transfer failed: sender={sent} receiver={got}")
    return Transfer(
        mib, float(sent["seconds"]), str(sent["sha256"]), str(got["sha256"]), int(got["bytes"])
    )
