"""Command line: the only place that parses argv, sets up logging and
picks the event loop (uvloop).  The options of ``up``, ``hub`` and the
control-plane commands come from options.py; the commands' work is done
by the modules they call."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import sys
import time
from typing import Any, NoReturn

from . import __version__, configfile, options
from .auth import OPTIONS as AUTH_OPTIONS
from .auth import build_auth, connect_options
from .config import Config, build, check_server_url
from .core.subjects import SubjectScheme
from .errors import ConfigError, ControlError, VlanNatsError
from .logfmt import JsonFormatter
from .options import DEFAULT_SERVER, LOG_LEVELS, ranged

log = logging.getLogger("vlan_nats")

UP_EPILOG = """examples:
  vlan-nats up --server nats://198.18.0.1:4222 --network 7 --address 198.18.100.1/24
  vlan-nats up --network lab --dev lab0 --mtu 9000 --mac random
  vlan-nats up --network 0 --compat          # talk to rapidloop's Go vlan-nats
  vlan-nats up --network lab --key-file /etc/vlan-nats/lab.key   # sealed frames
"""
HUB_EPILOG = """examples:
  vlan-nats hub --token-file /etc/vlan-nats/hub.token
  vlan-nats hub --listen 198.18.0.1:4222 --cluster-listen 198.18.0.1:6222 \
--route nats://198.18.0.2:6222
  vlan-nats hub --config /etc/vlan-nats/hub.toml --print-config
"""
TOP_EPILOG = """examples:
  sudo vlan-nats top
  sudo vlan-nats top --server nats://198.18.0.10:4222 --network 7
  sudo vlan-nats top --count 1          # one sample, for scripts
"""
RAW = argparse.RawDescriptionHelpFormatter
STATUS_PROBLEMS = 3  # `status` exit code when any daemon reports a problem


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, no usage dump
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def setup_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    elif os.environ.get("JOURNAL_STREAM"):
        # journald stamps lines itself: no second timestamp.
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    else:
        fmt_utc = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        fmt_utc.converter = time.gmtime  # this formatter only, not every one in the process
        handler.setFormatter(fmt_utc)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # nats-py logs every reconnect attempt itself; we log them rate-limited.
    logging.getLogger("nats").setLevel(logging.CRITICAL)
    # pyroute2 dumps every netlink message at DEBUG.
    logging.getLogger("pyroute2").setLevel(logging.WARNING)


def _example(text: str) -> str:
    return f"example:\n  {text}\n"


def _add_up(sub: Any) -> None:
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


def _add_client(sub: Any, name: str, help: str, epilog: str, **kw: Any) -> argparse.ArgumentParser:
    """A control-plane command: the NATS connection and network options."""
    p: argparse.ArgumentParser = sub.add_parser(
        name, help=help, formatter_class=RAW, epilog=epilog, **kw
    )
    options.add_arguments(p, "client")
    return p


def _add_control(sub: Any) -> None:
    peers = _add_client(
        sub,
        "peers",
        "list the nodes of a network (NATS request-reply)",
        _example("vlan-nats peers --server nats://198.18.0.10:4222 --network 7"),
    )
    peers.add_argument("--json", action="store_true", help="print JSON")
    peers.set_defaults(func=cmd_peers)
    png = _add_client(
        sub,
        "ping",
        "control-plane round trip to a node, by node id, MAC, address or hostname",
        _example("vlan-nats ping 02:12:34:56:78:9a --server nats://198.18.0.10:4222"),
    )
    png.add_argument(
        "target",
        help="the node id that peers prints, a MAC of the node (its TAP's or one behind it), "
        "one of its addresses, or its hostname (when it names one node only)",
    )
    png.add_argument("--count", type=ranged(int, "--count", 1), default=3, metavar="N")
    png.set_defaults(func=cmd_ping)


def _add_ipam(sub: Any) -> None:
    srv = _add_client(
        sub,
        "ipam",
        "run an address service instance (queue group ipam, leases in JetStream KV)",
        _example(
            "vlan-nats ipam --server nats://198.18.0.10:4222 --network 7 --pool 198.18.7.0/24"
        ),
    )
    options.add_arguments(srv, "ipam")
    srv.add_argument("--log-level", default="info", choices=options.LOG_LEVELS)
    srv.set_defaults(func=cmd_ipam)
    leases = _add_client(
        sub,
        "leases",
        "list the address service's leases of a network",
        _example("vlan-nats leases --server nats://198.18.0.10:4222 --network 7"),
    )
    leases.add_argument("--json", action="store_true", help="print JSON")
    leases.set_defaults(func=cmd_leases)


def _add_top(sub: Any) -> None:
    top = _add_client(
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


def _add_local(sub: Any) -> None:
    status = sub.add_parser(
        "status",
        help="show the daemons running on this host (local socket)",
        formatter_class=RAW,
        epilog=_example("sudo vlan-nats status --dev vnats7 --json"),
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


def _add_files(sub: Any) -> None:
    chk = sub.add_parser(
        "check-config",
        help="validate a TOML config file for `up` or `hub` (told apart by its keys)",
        formatter_class=RAW,
        epilog=_example("vlan-nats check-config /etc/vlan-nats/lab.toml"),
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


def _add_hub(sub: Any) -> None:
    hub = sub.add_parser(
        "hub",
        help="run and supervise a nats-server for the nodes (no NATS needed)",
        formatter_class=RAW,
        description="Run the nats-server that came with vlan-nats, with a generated "
        "configuration; restart it if it dies; stop it gracefully on SIGTERM.",
        epilog=HUB_EPILOG,
    )
    options.add_arguments(hub, "hub", given_only=True)
    hub.add_argument(
        "--config", metavar="FILE", default=argparse.SUPPRESS, help="TOML file with these options"
    )
    hub.add_argument(
        "--print-config",
        action="store_true",
        help="print the generated nats-server configuration (secrets redacted) and exit",
    )
    hub.set_defaults(func=cmd_hub)
    inst = sub.add_parser(
        "install-systemd",
        help="install the systemd units vlan-nats@.service and vlan-nats-hub.service (root)",
        formatter_class=RAW,
        epilog="example:\n  sudo vlan-nats install-systemd\n"
        "  sudo systemctl enable --now vlan-nats@lab     # /etc/vlan-nats/lab.toml\n",
    )
    inst.add_argument(
        "--dir", default="/etc/systemd/system", help="where (default /etc/systemd/system)"
    )
    inst.add_argument("--no-reload", action="store_true", help="do not run systemctl daemon-reload")
    inst.set_defaults(func=cmd_install_systemd)


def _add_demo(sub: Any) -> None:
    demo = sub.add_parser(
        "demo",
        help="run a 3-host demo in namespaces and check it (root)",
        epilog=_example(
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


def make_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="vlan-nats", description="A layer-2 virtual LAN carried over NATS.")
    p.add_argument("--version", action="version", version=f"vlan-nats {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    adders = (
        _add_up,
        _add_control,
        _add_ipam,
        _add_local,
        _add_top,
        _add_files,
        _add_hub,
        _add_demo,
    )
    for add in adders:
        add(sub)
    return p


def _install_uvloop() -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - a dependency, but degrade anyway
        log.warning("uvloop not installed; using asyncio's default loop")
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


_NOT_OPTIONS = ("command", "func", "config", "print_config")


def given(args: argparse.Namespace) -> dict[str, Any]:
    """The options given on the command line, by options.py name."""
    return {k: v for k, v in vars(args).items() if k not in _NOT_OPTIONS}


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


def cmd_up(args: argparse.Namespace) -> int:
    cfg, explicit_mac = up_settings(args)
    setup_logging(cfg.log_level, cfg.log_format)
    from .daemon import Daemon

    _install_uvloop()
    reload = (lambda: up_settings(args)) if "config" in vars(args) else None
    asyncio.run(Daemon(cfg, reload, explicit_mac).run())
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    setup_logging(args.log_level, "text")
    from .lab.demo import run_demo

    return run_demo(transfer_mb=args.transfer_mb)


def _scheme(args: argparse.Namespace) -> SubjectScheme:
    try:
        return SubjectScheme(args.subject_prefix, args.network)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def _connection(args: argparse.Namespace) -> tuple[tuple[str, ...], dict[str, Any]]:
    """The servers and nats-py options a client command's flags give."""
    servers = tuple(check_server_url(u) for u in (args.servers or [DEFAULT_SERVER]))
    return servers, connect_options(build_auth(**{k: getattr(args, k) for k in AUTH_OPTIONS}))


async def _client(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """A NATS client for the control-plane commands (ControlError if none)."""
    from .aio.ctlplane import connect_client

    servers, options = _connection(args)
    try:
        return await connect_client(servers, options)
    except Exception as e:  # nats-py raises many kinds on a failed connect
        why = str(e) or type(e).__name__
        raise ControlError(f"cannot connect to {', '.join(servers)}: {why}") from None


async def _with_client(args: argparse.Namespace, fn):  # type: ignore[no-untyped-def]
    nc = await _client(args)
    try:
        return await fn(nc)
    finally:
        await nc.close()


def cmd_peers(args: argparse.Namespace) -> int:
    from .aio.ctlplane import gather_peers
    from .views import peers_table

    scheme = _scheme(args)
    peers = asyncio.run(_with_client(args, lambda nc: gather_peers(nc, scheme, args.timeout)))
    if args.json:
        print(json.dumps([dataclasses.asdict(p) for p in peers], indent=2))
    elif peers:
        print(peers_table(peers))
    else:
        print(f"no nodes answered on network {scheme.network}", file=sys.stderr)
    return 0 if peers else 1


def cmd_ipam(args: argparse.Namespace) -> int:
    import signal

    from .aio.ipam import serve
    from .core.ipam import Pool, PoolError

    setup_logging(args.log_level, "text")
    if not args.pool:
        raise ConfigError("--pool is required, e.g. --pool 198.18.7.0/24")
    try:
        pool = Pool.parse(args.pool, args.range, tuple(args.exclude or ()))
    except PoolError as e:
        raise ConfigError(str(e)) from None
    scheme = _scheme(args)
    servers, opts = _connection(args)

    async def run() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(list(servers), opts, [(scheme, pool)], args.lease, args.replicas, stop)
        return 0

    return asyncio.run(run())


def cmd_leases(args: argparse.Namespace) -> int:
    import time

    from .aio.ipam import list_leases
    from .views import table

    scheme = _scheme(args)
    leases = asyncio.run(_with_client(args, lambda nc: list_leases(nc, scheme)))
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


def cmd_ping(args: argparse.Namespace) -> int:
    from .aio.ctlplane import describe_node, find_nodes, gather_peers, ping_node

    scheme = _scheme(args)

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

    lost = asyncio.run(_with_client(args, run))
    return 0 if lost < args.count else 1


def cmd_status(args: argparse.Namespace) -> int:
    from .aio.statussock import read_all
    from .views import problems_lines, status_table

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


def cmd_top(args: argparse.Namespace) -> int:
    from . import top

    def scheme_of(network: str) -> SubjectScheme:
        try:
            return SubjectScheme(args.subject_prefix, network)
        except ValueError as e:
            raise ConfigError(str(e)) from None

    async def go() -> int:
        nc = await _client(args) if args.servers else None
        try:
            return await top.run(args, scheme_of, nc)
        finally:
            if nc is not None:
                await nc.close()

    try:
        return asyncio.run(go())
    except KeyboardInterrupt:  # the usual way to leave top
        return 0


def cmd_completion(args: argparse.Namespace) -> int:
    from .completion import bash

    print(bash(make_parser()), end="")
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    if args.hub or (not args.up and configfile.looks_like_hub(args.file)):
        from .hub import build_hub

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
    from .keys import describe, new_key, write_new_key

    if args.file == "-":  # standard output, as `wg genkey` does: base64, one line
        import base64

        print(base64.b64encode(new_key()).decode())
        return 0
    key = write_new_key(args.file, force=args.force)
    print(f"{args.file}: new key, id {describe(key)}")
    return 0


def cmd_hub(args: argparse.Namespace) -> int:
    from .hub import Hub, build_hub, server_config

    kw = given(args)
    if "config" in vars(args):
        values, text = configfile.read(args.config, "hub")
        try:
            cfg = build_hub(**{**values, **kw})
        except ConfigError as e:
            raise configfile.locate(e, args.config, text, "hub", set(values) - set(kw)) from None
    else:
        cfg = build_hub(**kw)
    if args.print_config:
        print(server_config(cfg, redact=True), end="")
        return 0
    setup_logging(cfg.log_level, "text")
    return asyncio.run(Hub(cfg).run())


def cmd_install_systemd(args: argparse.Namespace) -> int:
    from .units import install, installation_paths, loosened_for

    for path in install(args.dir, reload=not args.no_reload):
        print(f"installed {path}")
    for note in loosened_for(installation_paths()).notes():
        print(f"note: {note}")
    print(
        "next: put a config in /etc/vlan-nats/NAME.toml, then\n"
        "  systemctl enable --now vlan-nats@NAME\n"
        "and for a hub: /etc/vlan-nats/hub.toml, then systemctl enable --now vlan-nats-hub"
    )
    return 0


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
