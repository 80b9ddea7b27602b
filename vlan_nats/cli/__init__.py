"""Command line: the only place that parses argv, sets up logging and
picks the event loop (uvloop).  The options of ``up``, ``hub`` and the
control-plane commands come from options.py; the commands' work is done
by the modules they call.  A module per group of commands:

    node.py     up, demo
    network.py  peers, ping, ipam, leases, top (over NATS)
    netadmin.py network set|unset|show|list|delete (netshow.py: show's view)
    local.py    status, completion, check-config, genkey (this host)
    hub.py      hub, install-systemd
    common.py   the parser class, logging, uvloop, the control commands' client
"""

from __future__ import annotations

import argparse
import sys

from .. import __version__
from ..errors import VlanNatsError
from . import hub, local, netadmin, network, node
from .common import Parser, given, setup_logging
from .local import STATUS_PROBLEMS
from .node import up_config, up_settings

__all__ = ["STATUS_PROBLEMS", "given", "main", "make_parser", "up_config", "up_settings"]


def make_parser() -> argparse.ArgumentParser:
    p = Parser(prog="vlan-nats", description="A layer-2 virtual LAN carried over NATS.")
    p.add_argument("--version", action="version", version=f"vlan-nats {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    adders = (  # the order of --help
        node.add_up,
        network.add_control,
        network.add_ipam,
        netadmin.add_network,
        local.add_local,
        network.add_top,
        local.add_files,
        hub.add_hub,
        node.add_demo,
    )
    for add in adders:
        add(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    if args.command not in ("up", "demo", "hub", "ipam"):  # those set up logging from their options
        setup_logging("warning", "text")
    try:
        return int(args.func(args))
    except VlanNatsError as e:
        msg = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        print(f"vlan-nats {args.command}: error: {msg}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"vlan-nats {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
