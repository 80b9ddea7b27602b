"""``vlan-nats top``: refresh the rates of this host's daemons (status
sockets) and, with ``--server``, of every node (control plane)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable

from nats.aio.client import Client

from .aio import statussock
from .aio.ctlplane import gather_peers
from .core.control import NodeInfo
from .core.status import Status
from .core.subjects import SubjectScheme
from .errors import ControlError
from .views import top_local, top_peers

Key = tuple[str, str]


def networks(given: str | None, local: list[Status]) -> list[str]:
    """The networks to show with --server: the one given, else those of
    this host's daemons.  ControlError when there is none to take."""
    if given is not None:
        return [given]
    found = sorted({st.network for st in local})
    if not found:
        raise ControlError(
            "no --network given and no vlan-nats daemon on this host to take it from: "
            "give --network ID"
        )
    return found


async def run(
    args: argparse.Namespace, scheme_of: Callable[[str], SubjectScheme], nc: Client | None
) -> int:
    """Print ``args.count`` frames (0: until interrupted), every ``args.interval`` s."""
    tty = sys.stdout.isatty()
    local = True
    try:
        prev_local = _by_daemon(statussock.read_all(args.dev))
    except ControlError as e:  # not root: the network view still works
        if nc is None:
            raise
        print(f"vlan-nats top: {e}; showing the network only", file=sys.stderr)
        local, prev_local = False, {}
    schemes = [scheme_of(n) for n in networks(args.network, list(prev_local.values()))]
    prev_peers = await _peers(nc, schemes, args.timeout)
    if not prev_local and nc is None:
        what = f"for {args.dev} " if args.dev else ""
        raise ControlError(
            f"no vlan-nats daemon {what}running on this host (give --server for the network)"
        )
    t0 = time.monotonic()
    shown = 0
    while not args.count or shown < args.count:
        await asyncio.sleep(args.interval)
        cur_local = statussock.read_all(args.dev) if local else []
        cur_peers = await _peers(nc, schemes, args.timeout)
        t1 = time.monotonic()
        dt, t0 = t1 - t0, t1
        parts = [
            f"vlan-nats top  {time.strftime('%H:%M:%S')}  every {args.interval:g} s"
            + ("  (Ctrl-C to quit)" if tty else "")
        ]
        if cur_local:
            parts.append(top_local(cur_local, prev_local, dt))
        if nc is not None:
            for scheme in schemes:
                nodes = [p for p in cur_peers.values() if p.network == scheme.network]
                parts.append(f"network {scheme.network}: {len(nodes)} nodes")
                parts.append(top_peers(nodes, prev_peers, dt))
        print(("\033[H\033[2J" if tty else "") + "\n\n".join(parts), flush=True)
        if not tty:
            print(flush=True)
        prev_local, prev_peers = _by_daemon(cur_local), cur_peers
        shown += 1
    return 0


def _by_daemon(statuses: list[Status]) -> dict[Key, Status]:
    return {s.key: s for s in statuses}


async def _peers(
    nc: Client | None, schemes: list[SubjectScheme], timeout: float
) -> dict[str, NodeInfo]:
    if nc is None:
        return {}
    found = await asyncio.gather(*(gather_peers(nc, s, min(timeout, 0.5)) for s in schemes))
    return {p.node_id: p for peers in found for p in peers}
