"""``network set|unset|show|list|delete``: a network's definition, defined
once in JetStream KV for all its nodes (netdef.py, aio/netkv.py), and the
one place that shows the network: its definition, members, leases and
problems."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

from ..core.subjects import SubjectScheme, validate_network
from ..errors import ConfigError
from ..netdef import Definition, check, network_options, parse_value
from .common import RAW, Parser, add_client, example, with_client

NETWORK_EPILOG = """examples:
  vlan-nats network set 7 mtu=9000 storm_pps=500 --server nats://198.18.0.10:4222
  vlan-nats network set 7 pool=198.18.7.0/24 description="lab LAN"
  vlan-nats network unset 7 storm_pps
  vlan-nats network show 7
  vlan-nats network list --json

settings: {keys}
"""


def add_network(sub: Any) -> None:
    keys = ", ".join(sorted(network_options()))
    net = sub.add_parser(
        "network",
        help="define a network once for all its nodes (JetStream KV), and show it whole",
        formatter_class=RAW,
        epilog=NETWORK_EPILOG.format(keys=keys),
        description="A network's definition: settings every node of it applies live.",
    )
    acts = net.add_subparsers(dest="action", required=True, parser_class=Parser)

    def action(name: str, help: str, text: str, func: Any, positional: bool = True) -> Any:
        p = add_client(acts, name, help, example(text), exclude=("network",))
        if positional:
            p.add_argument("net", metavar="NETWORK", help="the network: a VLAN ID or a name")
        p.set_defaults(func=func)
        return p

    s = action("set", "change settings of a network's definition", "vlan-nats network set 7 "
               "mtu=9000", cmd_set)  # fmt: skip
    s.add_argument("settings", nargs="+", metavar="KEY=VALUE", help=f"one of: {keys}")
    u = action("unset", "remove settings (the nodes' own then apply)",
               "vlan-nats network unset 7 mtu", cmd_unset)  # fmt: skip
    u.add_argument("settings", nargs="+", metavar="KEY")
    for p in (s, u):
        p.add_argument("--revision", type=int, metavar="N",
                       help="write only if the definition is still at revision N")  # fmt: skip
    sh = action("show", "the definition, members, leases and problems", "vlan-nats network "
                "show 7", cmd_show)  # fmt: skip
    ls = action("list", "the defined networks", "vlan-nats network list", cmd_list, False)
    for p in (sh, ls):
        p.add_argument("--json", action="store_true", help="print JSON")
    action("delete", "remove a network's definition", "vlan-nats network delete 7", cmd_delete)


def _scheme(args: argparse.Namespace) -> SubjectScheme:
    try:
        return SubjectScheme(args.subject_prefix, validate_network(args.net))
    except ValueError as e:
        raise ConfigError(str(e)) from None


def _assignments(items: list[str]) -> dict[str, Any]:
    """KEY=VALUE pairs, each checked now: nothing is written when one is bad."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep:
            raise ConfigError(f"bad setting {item!r}: expected KEY=VALUE, e.g. mtu=9000")
        out[key.strip()] = check(key.strip(), parse_value(text.strip()))
    return out


async def _change(args: argparse.Namespace, edit: Any) -> int:
    from ..aio import netkv

    scheme = _scheme(args)

    async def work(nc: Any) -> tuple[Definition, int]:
        kv = await netkv.definitions(nc, scheme.prefix)
        old = await _readable(kv, scheme.network)
        new = old.changed(edit(dict(old.settings)))
        return new, await netkv.put(kv, scheme.network, new, args.revision)

    new, revision = await with_client(args, work)
    shown = " ".join(f"{k}={_show(v)}" for k, v in sorted(new.settings.items())) or "(empty)"
    print(f"network {scheme.network}: {shown} (revision {revision})")
    return 0


async def _readable(kv: Any, network: str) -> Definition:
    """The stored definition, or an empty one; a stored value this release
    cannot read is replaced only by the settings given now."""
    from ..aio import netkv

    try:
        return await netkv.get(kv, network) or Definition()
    except ConfigError as e:
        print(f"warning: the stored definition is unreadable ({e}); writing over it",
              file=sys.stderr)  # fmt: skip
        entry = await kv.get(network)
        return Definition(revision=entry.revision or 0)


def cmd_set(args: argparse.Namespace) -> int:
    changes = _assignments(args.settings)
    return asyncio.run(_change(args, lambda s: {**s, **changes}))


def cmd_unset(args: argparse.Namespace) -> int:
    known = network_options()
    for key in args.settings:
        if key not in known:
            raise ConfigError(f"unknown network setting {key!r}: one of {', '.join(sorted(known))}")
    return asyncio.run(
        _change(args, lambda s: {k: v for k, v in s.items() if k not in args.settings})
    )


def cmd_delete(args: argparse.Namespace) -> int:
    from ..aio import netkv

    scheme = _scheme(args)

    async def work(nc: Any) -> bool:
        from ..aio.leasestore import BucketMissing

        try:
            kv = await netkv.definitions(nc, scheme.prefix, create=False)
        except BucketMissing:
            return False
        return await netkv.delete(kv, scheme.network)

    if not asyncio.run(with_client(args, work)):
        raise ConfigError(f"network {scheme.network} has no definition")
    print(f"network {scheme.network}: definition deleted")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from ..aio import netkv

    async def work(nc: Any) -> list[dict[str, Any]]:
        from ..aio.leasestore import BucketMissing

        try:
            kv = await netkv.definitions(nc, args.subject_prefix, create=False)
        except BucketMissing:
            return []
        out: list[dict[str, Any]] = []
        for name in await netkv.names(kv):
            try:
                d = await netkv.get(kv, name)
            except ConfigError as e:
                out.append({"network": name, "error": str(e)})
                continue
            if d is not None:
                out.append({"network": name, "revision": d.revision, "settings": d.settings})
        return out

    nets = asyncio.run(with_client(args, work))
    if args.json:
        print(json.dumps(nets, indent=2))
    elif not nets:
        print("no network is defined", file=sys.stderr)
    for n in [] if args.json else nets:
        settings = sorted(n.get("settings", {}).items())
        what = n.get("error") or " ".join(f"{k}={_show(v)}" for k, v in settings)
        print(f"{n['network']:<16} rev {n.get('revision', '?'):<5} {what}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from .netshow import gather, render

    scheme = _scheme(args)
    view = asyncio.run(with_client(args, lambda nc: gather(nc, scheme, time.time())))
    print(json.dumps(view, indent=2) if args.json else render(view))
    return 0


def _show(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return ",".join(map(str, v))
    if isinstance(v, str) and (" " in v or not v):
        return json.dumps(v)
    return f"{v:g}" if isinstance(v, float) else str(v)
