"""The commands that ask the network over NATS: ``peers``, ``ping``,
``ipam``, ``leases`` and ``top``."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import sys
import time
from typing import Any

from .. import options
from ..core.subjects import SubjectScheme
from ..errors import ConfigError, ControlError
from ..options import ranged
from .common import (
    add_client,
    client,
    connection,
    example,
    scheme_of_args,
    setup_logging,
    with_client,
)

log = logging.getLogger("vlan_nats")


TOP_EPILOG = """examples:
  sudo vlan-nats top
  sudo vlan-nats top --server nats://198.18.0.10:4222 --network 7
  sudo vlan-nats top --count 1          # one sample, for scripts
"""


def add_control(sub: Any) -> None:
    peers = add_client(
        sub,
        "peers",
        "list the nodes of a network (NATS request-reply)",
        example("vlan-nats peers --server nats://198.18.0.10:4222 --network 7"),
    )
    peers.add_argument("--json", action="store_true", help="print JSON")
    peers.set_defaults(func=cmd_peers)
    png = add_client(
        sub,
        "ping",
        "control-plane round trip to a node, by node id, MAC, address or hostname",
        example("vlan-nats ping 02:12:34:56:78:9a --server nats://198.18.0.10:4222"),
    )
    png.add_argument(
        "target",
        help="the node id that peers prints, a MAC of the node (its TAP's or one behind it), "
        "one of its addresses, or its hostname (when it names one node only)",
    )
    png.add_argument("--count", type=ranged(int, "--count", 1), default=3, metavar="N")
    png.set_defaults(func=cmd_ping)


def cmd_peers(args: argparse.Namespace) -> int:
    from ..aio.ctlplane import gather_peers
    from ..views import peers_table

    scheme = scheme_of_args(args)
    peers = asyncio.run(with_client(args, lambda nc: gather_peers(nc, scheme, args.timeout)))
    if args.json:
        print(json.dumps([dataclasses.asdict(p) for p in peers], indent=2))
    elif peers:
        print(peers_table(peers))
    else:
        print(f"no nodes answered on network {scheme.network}", file=sys.stderr)
    return 0 if peers else 1


def cmd_ping(args: argparse.Namespace) -> int:
    from ..aio.ctlplane import describe_node, find_nodes, gather_peers, ping_node

    scheme = scheme_of_args(args)

    async def run(nc):  # type: ignore[no-untyped-def]
        found = find_nodes(await gather_peers(nc, scheme, args.timeout), args.target)
        if not found:
            raise ControlError(
                f"no node with id, MAC, address or hostname {args.target!r} "
                f"on network {scheme.network}"
            )
        if len(found) > 1:
            raise ControlError(
                f"{args.target!r} names {len(found)} nodes on network {scheme.network}: "
                + "; ".join(describe_node(p) for p in found)
                + ": give a node id or a MAC"
            )
        node = found[0]
        lost = 0
        for i in range(args.count):
            rtt = await ping_node(nc, scheme, node.node_id, args.timeout)
            who = f"{node.hostname}/{node.dev} ({node.node_id}) seq={i}"
            lost += rtt is None
            print(f"no reply from {who}" if rtt is None else f"reply from {who} rtt={rtt:.2f} ms")
            if i + 1 < args.count:
                await asyncio.sleep(0.5)
        return lost

    lost = asyncio.run(with_client(args, run))
    return 0 if lost < args.count else 1


def add_ipam(sub: Any) -> None:
    srv = add_client(
        sub,
        "ipam",
        "run an address service instance (queue group ipam, leases in JetStream KV)",
        example("vlan-nats ipam --server nats://198.18.0.10:4222 --network 7 --pool 198.18.7.0/24"),
    )
    options.add_arguments(srv, "ipam")
    srv.add_argument("--log-level", default="info", choices=options.LOG_LEVELS)
    srv.set_defaults(func=cmd_ipam)
    leases = add_client(
        sub,
        "leases",
        "list the address service's leases of a network",
        example("vlan-nats leases --server nats://198.18.0.10:4222 --network 7"),
    )
    leases.add_argument("--json", action="store_true", help="print JSON")
    leases.set_defaults(func=cmd_leases)


def cmd_ipam(args: argparse.Namespace) -> int:
    import signal

    from ..aio.ipam import serve
    from ..core.ipam import Pool, PoolError

    setup_logging(args.log_level, "text")
    pool = None  # without --pool: the network's definition's (vlan-nats network set)
    if args.pool:
        try:
            pool = Pool.parse(args.pool, args.range, tuple(args.exclude or ()))
        except PoolError as e:
            raise ConfigError(str(e)) from None
    elif args.range or args.exclude:
        raise ConfigError("--range and --exclude need --pool")
    scheme = scheme_of_args(args)
    servers, opts = connection(args)

    async def run() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(list(servers), opts, [(scheme, pool)], args.lease, args.replicas, stop)
        return 0

    return asyncio.run(run())


def cmd_leases(args: argparse.Namespace) -> int:

    from ..aio.leasestore import list_leases
    from ..views import table

    scheme = scheme_of_args(args)
    leases = asyncio.run(with_client(args, lambda nc: list_leases(nc, scheme)))
    now = time.time()
    if args.json:
        print(json.dumps([dataclasses.asdict(le) for le in leases], indent=2))
    elif leases:
        rows = [
            (
                le.address,
                le.mac,
                le.node,
                le.hostname or "-",
                f"{le.expires - now:.0f} s" if le.live(now) else "expired",
            )  # fmt: skip
            for le in leases
        ]
        print(table(("ADDRESS", "MAC", "NODE", "HOSTNAME", "EXPIRES IN"), rows))
    else:
        print(f"no leases on network {scheme.network}", file=sys.stderr)
    return 0


def add_top(sub: Any) -> None:
    top = add_client(
        sub,
        "top",
        "live rates of this host's daemons (and, with --server, of every node)",
        TOP_EPILOG,
        description="Refresh every --interval seconds: frames per second by direction and "
        "kind (unicast/broadcast/multicast), Mbit/s, drops per second for the daemons on "
        "this host; with --server also per node of the network (control plane).",
    )
    # Without --network, --server shows the networks of this host's daemons.
    top.set_defaults(network=None)
    for action in top._actions:
        if action.dest == "network":
            action.help = "VLAN ID or name (default: the networks of this host's daemons)"
    top.add_argument("--dev", metavar="NAME", help="only this device's daemon")
    top.add_argument(
        "--interval",
        type=ranged(float, "--interval", 0.1, 3600),
        default=1.0,
        metavar="S",
        help="refresh period (default 1)",
    )
    top.add_argument(
        "--count",
        type=ranged(int, "--count", 0),
        default=0,
        metavar="N",
        help="stop after N frames (default: never)",
    )
    top.set_defaults(func=cmd_top)


def cmd_top(args: argparse.Namespace) -> int:
    from .. import top

    def scheme_of(network: str) -> SubjectScheme:
        try:
            return SubjectScheme(args.subject_prefix, network)
        except ValueError as e:
            raise ConfigError(str(e)) from None

    async def go() -> int:
        nc = await client(args) if args.servers or args.context else None
        try:
            return await top.run(args, scheme_of, nc)
        finally:
            if nc is not None:
                await nc.close()

    try:
        return asyncio.run(go())
    except KeyboardInterrupt:  # the usual way to leave top
        return 0
