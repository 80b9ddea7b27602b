"""Helpers several integration modules share (not tests themselves)."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

from prometheus_client.parser import text_string_to_metric_families

from vlan_nats.lab.checks import wait_until
from vlan_nats.lab.hosts import Lab, Node, free_port
from vlan_nats.lab.natsserver import NatsServer
from vlan_nats.lab.proc import spawn
from vlan_nats.lab.proc import stop as stop_process


class ExternalServer(NatsServer):
    """Lab's server slot, filled by a server we run ourselves (a hub)."""

    def start(self, timeout: float = 10.0) -> ExternalServer:
        return self

    def close(self) -> None:
        pass


@contextlib.contextmanager
def running_hub(
    *args: str, ready: str = "address service ready"
) -> Iterator[tuple[int, list[str]]]:
    """``vlan-nats hub --listen 127.0.0.1:PORT ARGS`` until the block ends:
    (PORT, its log lines), once it logged ``ready``."""
    port, lines = free_port(), []
    cmd = [sys.executable, "-m", "vlan_nats", "hub", "--listen", f"127.0.0.1:{port}",
           "--monitor", "off", *args]  # fmt: skip
    hub = spawn(cmd, lines, lambda line: None)
    try:
        assert wait_until(lambda: any(ready in x for x in lines), 30), lines
        yield port, lines
    finally:
        stop_process(hub, signal.SIGTERM, 20)


def same_named(lab: Lab, network: str, n: int) -> list[Node]:
    """``n`` daemons of one network with the default device name and the
    default (derived) MAC, each in its own namespace."""
    return [
        lab.add_node(i, ["--network", network], dev=f"vnats{network}", derived_mac=True)
        for i in range(1, n + 1)
    ]


def wait_quiet(nodes: list[Node], timeout: float = 10.0, window: float = 0.5) -> bool:
    """Until no node reads a frame from its TAP for ``window`` seconds
    (start-up traffic such as DAD and router solicitations is over)."""

    def frames() -> list[int]:
        return [int(n.status()["counters"]["tap_rx_frames"]) for n in nodes]

    last = frames()

    def quiet() -> bool:
        nonlocal last
        time.sleep(window)
        now = frames()
        still, last = now == last, now
        return still

    return wait_until(quiet, timeout, interval=0)


def exposition(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        assert r.headers["Content-Type"].startswith("text/plain")
        return r.read().decode()


def promtool(text: str) -> None:
    """The Prometheus project's own check of the exposition format and its
    naming rules (Debian's prometheus package): no problem at all."""
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=30)  # fmt: skip
    assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), r.stdout + r.stderr


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    text = exposition(port)
    promtool(text)
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out
