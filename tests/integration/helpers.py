"""Helpers several integration modules share (not tests themselves)."""

from __future__ import annotations

import time

from vlan_nats.lab.checks import wait_until
from vlan_nats.lab.hosts import Lab, Node


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
