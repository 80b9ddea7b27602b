"""Watching ARP on a host's TAP: which requests reach a host (routed ARP's
tests and the demo's figures).

An ``ArpWatch`` runs a small raw-socket (AF_PACKET) listener in the host's
namespace and collects every ARP frame the host receives as an ``ArpSeen``.
"""

from __future__ import annotations

import ipaddress
import subprocess
import sys
import threading
from dataclasses import dataclass

from ..errors import LabError
from .hosts import Namespace

# The listener: prints "ready", then op, sender MAC, sender and target
# address of every incoming ARP frame (PACKET_OUTGOING, 4, is left out).
_LISTENER = r"""
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
s.bind((sys.argv[1], 0))
print("ready", flush=True)
while True:
    f, addr = s.recvfrom(2048)
    if addr[2] == 4 or len(f) < 42:
        continue
    print(int.from_bytes(f[20:22], "big"), f[22:28].hex(), f[28:32].hex(), f[38:42].hex(),
          flush=True)
"""


@dataclass(frozen=True)
class ArpSeen:
    op: int  # 1 request, 2 reply
    sender_mac: str
    sender: str
    target: str

    @property
    def gratuitous(self) -> bool:
        return self.sender == self.target


class ArpWatch:
    def __init__(self, ns: Namespace, dev: str) -> None:
        self.seen: list[ArpSeen] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._proc = ns.popen(
            sys.executable, "-c", _LISTENER, dev, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._ready.wait(10):
            self.stop()
            raise LabError(f"ARP listener on {dev} did not start")

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            if line.startswith("ready"):
                self._ready.set()
                continue
            op, mac, sender, target = line.split()
            seen = ArpSeen(int(op), mac, _ip(sender), _ip(target))
            with self._lock:
                self.seen.append(seen)

    def requests_for(self, target: str) -> list[ArpSeen]:
        with self._lock:
            return [s for s in self.seen if s.op == 1 and s.target == target]

    def stop(self) -> list[ArpSeen]:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait(10)
        self._reader.join(5)
        for f in (self._proc.stdout, self._proc.stderr):
            if f is not None:
                f.close()
        return list(self.seen)

    def __enter__(self) -> ArpWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _ip(hex8: str) -> str:
    return str(ipaddress.IPv4Address(bytes.fromhex(hex8)))
