"""Test hosts: network namespaces with unique names, and daemons in them.

Every namespace and process made here is removed by ``Lab.close()``, which
runs on exceptions and Ctrl-C too.  Addresses come from 198.18.0.0/15.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from ..aio import statussock
from ..errors import LabError
from .natsserver import NatsServer
from .proc import spawn, wait_event
from .proc import stop as stop_process


def run(
    cmd: list[str], timeout: float = 30, check: bool = True
) -> subprocess.CompletedProcess[str]:
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise LabError(f"timed out after {timeout}s: {' '.join(cmd)}") from None
    except FileNotFoundError:
        raise LabError(f"{cmd[0]} not found: install it (see README)") from None
    if check and res.returncode != 0:
        raise LabError(f"failed ({res.returncode}): {' '.join(cmd)}: {res.stderr.strip()}")
    return res


def free_port() -> int:
    """A TCP port free on loopback right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unique_prefix(tag: str = "vn") -> str:
    """A short prefix unique to this run: namespaces and device names start with it."""
    return f"{tag}{secrets.token_hex(3)}"


class Namespace:
    def __init__(self, name: str) -> None:
        self.name = name
        run(["ip", "netns", "add", name])
        self.alive = True
        run(self.cmd("ip", "link", "set", "lo", "up"))

    @staticmethod
    def exists(name: str) -> bool:
        return os.path.exists(os.path.join("/run/netns", name))

    def cmd(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def run(
        self, *argv: str, timeout: float = 30, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return run(self.cmd(*argv), timeout=timeout, check=check)

    def popen(self, *argv: str, **kw: object) -> subprocess.Popen[str]:
        return subprocess.Popen(self.cmd(*argv), text=True, **kw)  # type: ignore[call-overload, no-any-return]

    def delete(self) -> None:
        if self.alive:
            # Kill anything still running inside (iperf3, transfer helpers).
            pids = run(["ip", "netns", "pids", self.name], check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            run(["ip", "netns", "del", self.name], check=False)
            self.alive = False


@dataclass
class Node:
    """One ``vlan-nats up`` daemon, its TAP moved into ``ns``."""

    ns: Namespace
    dev: str
    address: str  # CIDR; "" for none (e.g. a bridge port: the bridge holds it)
    args: list[str]
    proc: subprocess.Popen[str] | None = None
    lines: list[str] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)
    # Before the Python command: e.g. ``env PYTHONPATH=...`` for another release.
    launcher: list[str] = field(default_factory=list)
    python: str = sys.executable  # e.g. another virtual environment's

    @property
    def ip(self) -> str:
        return self.address.split("/")[0]

    def start(self, timeout: float = 20.0) -> Node:
        # VLAN_NATS_LAB_LAUNCHER: a prefix for every daemon the lab starts
        # (the sanitized datapath's environment: lab/sanitized.py).
        launcher = self.launcher or shlex.split(os.environ.get("VLAN_NATS_LAB_LAUNCHER", ""))
        cmd = [
            *launcher,
            self.python,
            "-m",
            "vlan_nats",
            "up",
            "--netns",
            self.ns.name,
            "--dev",
            self.dev,
            *(["--address", self.address] if self.address else []),
            *self.args,
        ]
        self.lines = []
        self.ready.clear()

        def on_line(line: str) -> None:
            if " ready " in line or '"msg": "ready"' in line:  # text or --log-format json
                self.ready.set()

        self.proc = spawn(cmd, self.lines, on_line)
        if timeout:
            self.wait_ready(timeout)
        return self

    def wait_lease(self, timeout: float = 20.0) -> str:
        """``--address auto``: the address the daemon was given (CIDR), once
        it has one; it becomes this node's ``address``."""
        deadline = time.monotonic() + timeout
        while True:
            leases = self.status().get("leases") or []
            if isinstance(leases, list) and leases:
                self.address = str(leases[0]["address"])
                return self.address
            if time.monotonic() > deadline or self.proc is None or self.proc.poll() is not None:
                raise LabError(f"daemon {self.dev} got no address:\n  " + "\n  ".join(
                    self.lines[-10:]))  # fmt: skip
            time.sleep(0.1)

    def wait_ready(self, timeout: float = 20.0) -> None:
        if self.proc is None or not wait_event(self.ready, self.proc, timeout):
            raise LabError(f"daemon {self.dev} not ready:\n  " + "\n  ".join(self.lines[-10:]))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        """Signal the daemon and wait; returns its exit code."""
        if self.proc is None:
            return None
        rc = stop_process(self.proc, sig, timeout)
        self.proc = None
        return rc

    def counters(self, timeout: float = 5.0) -> dict[str, object]:
        """Ask the daemon for its counters (SIGUSR1) and parse the log line."""
        if self.proc is None:
            raise LabError(f"daemon {self.dev} is not running")
        seen = len(self.lines)
        self.proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines[seen:]:
                if " counters {" in line:
                    return json.loads(line.split(" counters ", 1)[1])  # type: ignore[no-any-return]
            time.sleep(0.02)
        raise LabError(f"daemon {self.dev} did not report counters")

    def status(self, timeout: float = 3.0) -> dict[str, object]:
        """The daemon's status document, from its local socket."""
        return statussock.read(statussock.socket_path(self.dev, self.ns.name), timeout)

    def link_stats(self) -> dict[str, int]:
        """rx/tx packet counts of the TAP as the kernel sees them, and the
        frames the kernel dropped because the daemon did not read them in
        time (tx_dropped: its queue toward the daemon was full)."""
        out = self.ns.run("ip", "-j", "-s", "link", "show", "dev", self.dev).stdout
        stats = json.loads(out)[0]["stats64"]
        return {
            "rx": stats["rx"]["packets"],
            "tx": stats["tx"]["packets"],
            "tx_dropped": stats["tx"]["dropped"],
        }

    def link(self) -> str:
        return self.ns.run("ip", "-d", "-s", "link", "show", "dev", self.dev).stdout

    def mac(self) -> str:
        m = re.search(r"link/ether ([0-9a-f:]{17})", self.link())
        if not m:
            raise LabError(f"no MAC on {self.dev}")
        return m.group(1)

    def link_local(self, timeout: float = 10.0) -> str:
        """The IPv6 link-local address once DAD is done."""
        deadline = time.monotonic() + timeout
        while True:
            out = self.ns.run("ip", "-6", "addr", "show", "dev", self.dev).stdout
            m = re.search(r"inet6 (fe80::[0-9a-f:]+)/64 scope link(?! tentative)(.*)", out)
            if m and "tentative" not in m.group(2):
                return m.group(1)
            if time.monotonic() > deadline:
                raise LabError(f"no usable IPv6 link-local address on {self.dev}: {out.strip()}")
            time.sleep(0.1)


class Lab:
    """A private nats-server and ``n`` hosts, one daemon each."""

    def __init__(
        self,
        n: int,
        tag: str = "vn",
        subnet: str = "198.18.0",
        plen: int = 24,
        node_args: list[str] | None = None,
        start_nodes: bool = True,
        server_urls: list[str] | None = None,
        server: NatsServer | None = None,
        dataplane: str | None = None,
    ) -> None:
        self.prefix = unique_prefix(tag)
        # Every node's --dataplane (None: the daemon's default, auto); a
        # node given its own in ``extra`` keeps that.
        self.dataplane = dataplane
        # Our own server (or the one given, not yet started, e.g. with an
        # auth config), unless the caller runs them (a cluster, leafnodes):
        # then node i is given server_urls[i % len].
        self.server = server if server is not None else NatsServer()
        self._server_urls = server_urls
        self.namespaces: list[Namespace] = []
        self.nodes: list[Node] = []
        self._n = n
        self._subnet = subnet
        self._plen = plen
        self._node_args = node_args or []
        self._start_nodes = start_nodes

    def __enter__(self) -> Lab:
        try:
            if self._server_urls is None:
                self.server.start()
            for i in range(1, self._n + 1):
                self.add_node(i, start=self._start_nodes)
        except BaseException:
            self.close()
            raise
        return self

    def add_node(
        self,
        i: int,
        extra: list[str] | None = None,
        start: bool = True,
        dev: str | None = None,
        derived_mac: bool = False,
    ) -> Node:
        """Host ``i`` in its own namespace.  ``dev``: a device name of the
        caller's (e.g. the same in every namespace; the TAP is made here
        first, so start such nodes one by one); ``derived_mac``: the
        daemon's own stable MAC instead of ``--mac random``."""
        ns = Namespace(f"{self.prefix}-h{i}")
        self.namespaces.append(ns)
        args = ["--server", self.server_url(i), *self._node_args, *(extra or [])]
        auto = "auto" in args  # --address auto: the address service's, see wait_lease
        node = Node(
            ns,
            dev=dev or f"{self.prefix}n{i}",
            address="" if auto else f"{self._subnet}.{i}/{self._plen}",
            args=args,
        )
        if "--mac" not in node.args and not derived_mac:
            node.args += ["--mac", "random"]
        if self.dataplane is not None and "--dataplane" not in node.args:
            node.args += ["--dataplane", self.dataplane]
        self.nodes.append(node)
        if start:
            node.start()
        return node

    def server_url(self, i: int) -> str:
        """The seed URL host ``i`` (from 1) is given."""
        if self._server_urls:
            return self._server_urls[(i - 1) % len(self._server_urls)]
        return self.server.url

    def close(self) -> None:
        for node in self.nodes:
            node.stop()
            # A daemon killed with SIGKILL cannot remove its status socket.
            statussock.socket_path(node.dev, node.ns.name).unlink(missing_ok=True)
        for ns in self.namespaces:
            ns.delete()
        self.server.close()

    def __exit__(self, *exc: object) -> None:
        self.close()
