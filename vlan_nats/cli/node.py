"""``up`` (the daemon) and ``demo``."""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import Any

from .. import configfile, options
from ..config import Config, build
from ..options import LOG_LEVELS, ranged
from .common import (
    RAW,
    example,
    given,
    install_uvloop,
    setup_logging,
)

log = logging.getLogger("vlan_nats")


UP_EPILOG = """examples:
  vlan-nats up --server nats://198.18.0.1:4222 --network 7 --address 198.18.100.1/24
  vlan-nats up --network lab --dev lab0 --mtu 9000 --mac random
  vlan-nats up --network 0 --compat          # talk to rapidloop's Go vlan-nats
  vlan-nats up --network lab --key-file /etc/vlan-nats/lab.key   # sealed frames
"""


def add_up(sub: Any) -> None:
    up = sub.add_parser(
        "up",
        help="run the daemon for one network (root)",
        epilog=UP_EPILOG,
        formatter_class=RAW,
        description="Create a TAP device and carry its frames over NATS until SIGINT/SIGTERM.",
    )
    # Only what is given on the command line lands in the namespace, so
    # that it can override a --config file; build() holds the defaults.
    options.add_arguments(up, "up", given_only=True)
    up.add_argument(
        "--config",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="TOML file with any of these options (flags override it)",
    )
    up.set_defaults(func=cmd_up)


def up_config(args: argparse.Namespace) -> Config:
    return up_settings(args)[0]


def up_settings(args: argparse.Namespace) -> tuple[Config, bool]:
    """The Config of ``up`` (its file read now, then the flags), and
    whether --mac named a MAC (not random, not derived)."""
    flags = given(args)
    if "config" in vars(args):
        values, _ = configfile.read(args.config)
        cfg = configfile.build_from(args.config, flags)
    else:
        values, cfg = {}, build(**flags)
    return cfg, flags.get("mac", values.get("mac")) not in (None, "random", "stable")


def explicit_settings(args: argparse.Namespace) -> frozenset[str]:
    """The options given as flags or in the config file (not defaults):
    these win over the network's definition."""
    names = set(given(args))
    if "config" in vars(args):
        names |= set(configfile.read(args.config)[0])
    return frozenset(names)


def cmd_up(args: argparse.Namespace) -> int:
    cfg, explicit_mac = up_settings(args)
    setup_logging(cfg.log_level, cfg.log_format)
    from ..daemon import Daemon

    install_uvloop()
    reload = (lambda: up_settings(args)) if "config" in vars(args) else None
    asyncio.run(Daemon(cfg, reload, explicit_mac, explicit_settings(args)).run())
    return 0


def add_demo(sub: Any) -> None:
    demo = sub.add_parser(
        "demo",
        help="run a 3-host demo in namespaces and check it (root)",
        epilog=example(
            "sudo vlan-nats demo        # 3 namespaces, a private nats-server, checks, cleanup"
        ),
        formatter_class=RAW,
        description="Start a private nats-server and 3 namespaces with one daemon each, then check "
        "IPv4 and IPv6 reachability and a 100 MB TCP transfer. Cleans up everything.",
    )
    demo.add_argument(
        "--transfer-mb",
        type=ranged(int, "--transfer-mb", 1, 100_000),
        default=100,
        metavar="MB",
        help="size of the TCP transfer (default 100)",
    )
    demo.add_argument("--log-level", default="warning", choices=LOG_LEVELS)
    demo.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    setup_logging(args.log_level, "text")
    from ..lab.demo import run_demo

    return run_demo(transfer_mb=args.transfer_mb)
