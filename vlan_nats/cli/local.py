"""The commands about this host and its files: ``status``, ``completion``,
``check-config`` and ``genkey``."""

from __future__ import annotations

import argparse
import json
import logging
from typing import Any

from .. import configfile
from ..errors import ConfigError, ControlError
from .common import (
    RAW,
    example,
)

log = logging.getLogger("vlan_nats")


STATUS_PROBLEMS = 3  # `status` exit code when any daemon reports a problem


def add_local(sub: Any) -> None:
    status = sub.add_parser(
        "status",
        help="show the daemons running on this host (local socket)",
        formatter_class=RAW,
        epilog=example("sudo vlan-nats status --dev vnats7 --json"),
    )
    status.add_argument("--dev", metavar="NAME", help="only this device's daemon")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(func=cmd_status)
    comp = sub.add_parser(
        "completion",
        help="print a shell completion script",
        formatter_class=RAW,
        epilog="examples:\n  source <(vlan-nats completion bash)\n"
        "  vlan-nats completion bash | sudo tee /usr/share/bash-completion/completions/vlan-nats\n",
    )
    comp.add_argument("shell", choices=["bash"])
    comp.set_defaults(func=cmd_completion)


def cmd_status(args: argparse.Namespace) -> int:
    from ..aio.statussock import read_all
    from ..views import problems_lines, status_table

    statuses = read_all(args.dev)
    if not statuses:
        what = f"for {args.dev} " if args.dev else ""
        raise ControlError(f"no vlan-nats daemon {what}running on this host")
    if args.json:
        print(json.dumps([st.to_json() for st in statuses], indent=2))
    else:
        print(status_table(statuses))
        for line in problems_lines(statuses):
            print(line)
    # Scripts and monitoring: 0 all well, 3 a daemon reports a problem
    # (1 stays "could not ask", 2 a usage error).
    return STATUS_PROBLEMS if any(st.problems() for st in statuses) else 0


def cmd_completion(args: argparse.Namespace) -> int:
    from ..completion import bash
    from . import make_parser  # the whole parser: this module is part of it

    print(bash(make_parser()), end="")
    return 0


def add_files(sub: Any) -> None:
    chk = sub.add_parser(
        "check-config",
        help="validate a TOML config file for `up` or `hub` (told apart by its keys)",
        formatter_class=RAW,
        epilog=example("vlan-nats check-config /etc/vlan-nats/lab.toml"),
    )
    chk.add_argument("file")
    kind = chk.add_mutually_exclusive_group()
    kind.add_argument("--hub", action="store_true", help="a file for `vlan-nats hub`")
    kind.add_argument("--up", action="store_true", help="a file for `vlan-nats up`")
    chk.set_defaults(func=cmd_check_config)
    gk = sub.add_parser(
        "genkey",
        help="write a new random sealing key (mode 0600)",
        formatter_class=RAW,
        description="Write 32 random bytes to FILE, readable by its owner only. Give the same "
        "file to every node of a network as --key-file.",
        epilog="example:\n  sudo vlan-nats genkey /etc/vlan-nats/lab.key\n"
        "  sudo vlan-nats up --network lab --key-file /etc/vlan-nats/lab.key\n",
    )
    gk.add_argument("file", help="where to write it; - for standard output (base64)")
    gk.add_argument("--force", action="store_true", help="replace an existing file")
    gk.set_defaults(func=cmd_genkey)


def cmd_check_config(args: argparse.Namespace) -> int:
    if args.hub or (not args.up and configfile.looks_like_hub(args.file)):
        from ..hub import build_hub

        values, text = configfile.read(args.file, "hub")
        try:
            hub = build_hub(**values)
        except ConfigError as e:
            raise configfile.locate(e, args.file, text, "hub", set(values)) from None
        print(f"{args.file}: ok: hub, listen {hub.listen}, auth {hub.auth_text}")
        return 0
    cfg = configfile.build_from(args.file)
    print(
        f"{args.file}: ok: network {cfg.network}, dev {cfg.dev}, mac {cfg.mac_text}, "
        f"servers {', '.join(cfg.servers)}"
    )
    return 0


def cmd_genkey(args: argparse.Namespace) -> int:
    from ..keys import describe, new_key, write_new_key

    if args.file == "-":  # standard output, as `wg genkey` does: base64, one line
        import base64

        print(base64.b64encode(new_key()).decode())
        return 0
    key = write_new_key(args.file, force=args.force)
    print(f"{args.file}: new key, id {describe(key)}")
    return 0
