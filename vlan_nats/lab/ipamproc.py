"""``vlan-nats ipam`` instances for the tests, the demo and scripts/scale.py."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading

from ..errors import LabError
from .proc import spawn, wait_event
from .proc import stop as stop_process


class IpamProcess:
    """One address-service instance (a child process) until stop()."""

    def __init__(self, server: str, network: str, pool: str | None, *extra: str) -> None:
        """``pool`` None: the network's definition's (no --pool)."""
        self.cmd = [
            sys.executable, "-m", "vlan_nats", "ipam", "--server", server,
            "--network", network, *(["--pool", pool] if pool else []), *extra,
        ]  # fmt: skip
        self.lines: list[str] = []
        self.proc: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 20.0) -> IpamProcess:
        ready = threading.Event()

        def on_line(line: str) -> None:
            if "address service ready" in line:
                ready.set()

        self.lines = []
        self.proc = spawn(self.cmd, self.lines, on_line)
        if not wait_event(ready, self.proc, timeout):
            self.stop()
            raise LabError("address service not ready:\n  " + "\n  ".join(self.lines[-10:]))
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        if self.proc is None:
            return None
        rc = stop_process(self.proc, sig, timeout)
        self.proc = None
        return rc

    def __enter__(self) -> IpamProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
