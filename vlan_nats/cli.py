"""Command line: the only place that parses argv, sets up logging and
picks the event loop (uvloop)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable
from typing import Any, NoReturn

from . import __version__, configfile
from .auth import OPTIONS as AUTH_OPTIONS
from .auth import build_auth, connect_options
from .config import (
    DEFAULT_SERVER,
    LOG_FORMATS,
    LOG_LEVELS,
    Config,
    build,
    check_range,
    check_server_url,
)
from .core.subjects import SubjectScheme
from .errors import ConfigError, ControlError, VlanNatsError
from .hub import DEFAULT_LISTEN, DEFAULT_MONITOR

log = logging.getLogger("vlan_nats")

UP_EPILOG = """examples:
  vlan-nats up --server nats://198.18.0.1:4222 --network 7 --address 198.18.100.1/24
  vlan-nats up --network lab --dev lab0 --mtu 9000 --mac random
  vlan-nats up --network 0 --compat          # talk to rapidloop's Go vlan-nats
  vlan-nats up --network lab --key-file /etc/vlan-nats/lab.key   # sealed frames
"""
DEMO_EPILOG = """example:
  sudo vlan-nats demo        # 3 namespaces, a private nats-server, checks, cleanup
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, no usage dump
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


# Our messages are "fixed text key=value key=value ..." (values may hold
# spaces, e.g. error='...'); JSON lines carry the fields as members.
_FIELD_RE = re.compile(r"(?:^|\s)([a-z_][a-z0-9_]*)=")


def split_fields(message: str) -> tuple[str, dict[str, str]]:
    """``"ready dev=x mac=y"`` -> ``("ready", {"dev": "x", "mac": "y"})``.

    A value runs up to the next `` key=``; text after the fields (": ...")
    stays with the last value.  A message without fields is returned whole."""
    matches = list(_FIELD_RE.finditer(message))
    if not matches:
        return message, {}
    text = message[: matches[0].start()].strip()
    fields: dict[str, str] = {}
    for m, nxt in zip(matches, [*matches[1:], None], strict=True):
        end = nxt.start() if nxt is not None else len(message)
        fields[m.group(1)] = message[m.end() : end].strip()
    return text, fields


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text, fields = split_fields(record.getMessage())
        out: dict[str, object] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": text,
        }
        for k, v in fields.items():
            out.setdefault(k, v)  # a field never hides ts/level/logger/msg
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out)


def setup_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
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


def ranged(
    kind: type[int] | type[float], flag: str, low: float, high: float | None = None
) -> Callable[[str], float]:
    """An argparse type: a number checked by config.check_range."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        try:
            return check_range(flag, value, low, high)
        except ConfigError as e:
            why = str(e).split(": ", 1)[1]
            raise argparse.ArgumentTypeError(f"bad value {text}: {why}") from None

    return parse


def add_auth_args(p: argparse.ArgumentParser, suppress: bool = False) -> None:
    """NATS authentication and TLS.  Secrets only from files or the
    environment: a command line is visible to every user in ps."""
    d: dict[str, Any] = {"default": argparse.SUPPRESS} if suppress else {}
    g = p.add_argument_group("NATS authentication and TLS")
    g.add_argument(
        "--user",
        metavar="NAME",
        help="NATS user (password from --password-file or $VLAN_NATS_PASSWORD)",
        **d,
    )
    g.add_argument("--password-file", metavar="FILE", help="file holding the password", **d)
    g.add_argument(
        "--token-file", metavar="FILE", help="file holding a NATS token (or $VLAN_NATS_TOKEN)", **d
    )
    g.add_argument("--nkey", metavar="SEEDFILE", help="file holding a user nkey seed", **d)
    g.add_argument(
        "--creds", metavar="FILE", help="user JWT credentials file (.creds, operator mode)", **d
    )
    g.add_argument("--tls-ca", metavar="FILE", help="CA bundle to verify the server", **d)
    g.add_argument("--tls-cert", metavar="FILE", help="client certificate (mutual TLS)", **d)
    g.add_argument("--tls-key", metavar="FILE", help="client key (mutual TLS)", **d)
    g.add_argument(
        "--tls-first",
        action="store_true",
        help="TLS handshake before the NATS INFO (servers with handshake_first)",
        **d,
    )


def make_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="vlan-nats", description="A layer-2 virtual LAN carried over NATS.")
    p.add_argument("--version", action="version", version=f"vlan-nats {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    up = sub.add_parser(
        "up",
        # Only what is given on the command line lands in the namespace, so
        # that it can override a --config file; build() holds the defaults.
        argument_default=argparse.SUPPRESS,
        help="run the daemon for one network (root)",
        epilog=UP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Create a TAP device and carry its frames over NATS until SIGINT/SIGTERM.",
    )
    up.add_argument(
        "--server",
        action="append",
        metavar="URL",
        help=f"NATS server URL, repeatable (default {DEFAULT_SERVER})",
    )
    up.add_argument(
        "--network",
        metavar="ID",
        help="VLAN ID 0-4095 or a name of [A-Za-z0-9_-] (default 0)",
    )
    up.add_argument("--dev", metavar="NAME", help="TAP device name (default vnats<ID>)")
    up.add_argument(
        "--mac",
        metavar="MAC",
        help="MAC address, or 'random' (default: stable, from /etc/machine-id, network, device "
        "and namespace)",
    )
    up.add_argument("--mtu", type=int, metavar="N", help="MTU (default 1500)")
    up.add_argument(
        "--address",
        action="append",
        metavar="CIDR",
        help="add this address to the device, repeatable (ip addr add works too)",
    )
    up.add_argument("--no-up", action="store_true", help="leave the link down")
    up.add_argument(
        "--netns",
        metavar="NAME",
        help="move the device into this existing namespace (NATS stays reachable from here)",
    )
    up.add_argument(
        "--subject-prefix",
        metavar="PREFIX",
        help="first subject token(s) (default vlan)",
    )
    up.add_argument(
        "--compat",
        action="store_true",
        help="interoperate with rapidloop's Go vlan-nats: raw frames, its subjects",
    )
    up.add_argument(
        "--no-offload",
        action="store_true",
        help="do not negotiate checksum/segmentation offloads (frames at most MTU-sized)",
    )
    up.add_argument(
        "--bridge",
        metavar="BR",
        help="enslave the TAP to this existing Linux bridge (in --netns if given): "
        "learn the MACs behind it",
    )
    up.add_argument(
        "--mac-ageing",
        type=float,
        metavar="S",
        help="bridge mode: forget a MAC idle this long (default 300)",
    )
    up.add_argument(
        "--max-macs",
        type=int,
        metavar="N",
        help="bridge mode: MACs learned behind the bridge at most (default 4096)",
    )
    up.add_argument(
        "--storm-pps",
        type=float,
        metavar="PPS",
        help="cap on broadcast+multicast+unknown-unicast frames sent, per second "
        "(default 1000, 0: off)",
    )
    up.add_argument("--log-level", choices=LOG_LEVELS, help="default info")
    up.add_argument("--log-format", choices=LOG_FORMATS, help="default text")
    add_auth_args(up, suppress=True)
    g = up.add_argument_group("end-to-end sealing (docs/security.md)")
    g.add_argument(
        "--key-file",
        metavar="FILE",
        help="seal every frame with this 32-byte key and accept only frames sealed "
        "with it (make one with: vlan-nats genkey FILE); SIGHUP re-reads it",
    )
    g.add_argument(
        "--accept-key-file",
        metavar="FILE",
        help="also accept frames sealed with this key (key rollover)",
    )
    up.add_argument(
        "--metrics-listen",
        metavar="HOST:PORT",
        help="serve Prometheus metrics at http://HOST:PORT/metrics",
    )
    up.add_argument(
        "--run-as",
        metavar="USER",
        help="after set-up, drop root: become USER, keep only CAP_NET_ADMIN (docs/security.md)",
    )
    up.add_argument(
        "--config", metavar="FILE", help="TOML file with any of these options (flags override it)"
    )

    def add_network_args(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--server",
            action="append",
            metavar="URL",
            help=f"NATS server URL, repeatable (default {DEFAULT_SERVER})",
        )
        p.add_argument("--network", default="0", metavar="ID", help="network (default 0)")
        p.add_argument("--subject-prefix", default="vlan", metavar="PREFIX")
        add_auth_args(p)
        p.add_argument(
            "--timeout",
            type=ranged(float, "--timeout", 0.01, 3600),
            default=1.0,
            metavar="S",
            help="how long to wait for replies (default 1)",
        )

    peers = sub.add_parser(
        "peers",
        help="list the nodes of a network (NATS request-reply)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  vlan-nats peers --server nats://198.18.0.10:4222 --network 7\n",
    )
    add_network_args(peers)
    peers.add_argument("--json", action="store_true", help="print JSON")

    png = sub.add_parser(
        "ping",
        help="control-plane round trip to a node, by node id, MAC or hostname",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  vlan-nats ping 02:12:34:56:78:9a --server nats://198.18.0.10:4222\n",
    )
    png.add_argument(
        "target",
        help="the node id that peers prints, a MAC of the node (its TAP's or one behind it), "
        "or its hostname",
    )
    add_network_args(png)
    png.add_argument("--count", type=ranged(int, "--count", 1), default=3, metavar="N")

    status = sub.add_parser(
        "status",
        help="show the daemons running on this host (local socket)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  sudo vlan-nats status --dev vnats7 --json\n",
    )
    status.add_argument("--dev", metavar="NAME", help="only this device's daemon")
    status.add_argument("--json", action="store_true", help="print JSON")

    comp = sub.add_parser(
        "completion",
        help="print a shell completion script",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  source <(vlan-nats completion bash)\n"
        "  vlan-nats completion bash | sudo tee /usr/share/bash-completion/completions/vlan-nats\n",
    )
    comp.add_argument("shell", choices=["bash"])

    top = sub.add_parser(
        "top",
        help="live rates of this host's daemons (and, with --server, of every node)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Refresh every --interval seconds: frames per second by direction and "
        "kind (unicast/broadcast/multicast), Mbit/s, drops per second for the daemons on "
        "this host; with --server also per node of the network (control plane).",
        epilog="examples:\n  sudo vlan-nats top\n"
        "  sudo vlan-nats top --server nats://198.18.0.10:4222 --network 7\n"
        "  sudo vlan-nats top --count 1          # one sample, for scripts\n",
    )
    add_network_args(top)
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

    chk = sub.add_parser(
        "check-config",
        help="validate a TOML config file for `up`",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  vlan-nats check-config /etc/vlan-nats/lab.toml\n",
    )
    chk.add_argument("file")

    gk = sub.add_parser(
        "genkey",
        help="write a new random sealing key (mode 0600)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Write 32 random bytes to FILE, readable by its owner only. Give the same "
        "file to every node of a network as --key-file.",
        epilog="example:\n  sudo vlan-nats genkey /etc/vlan-nats/lab.key\n"
        "  sudo vlan-nats up --network lab --key-file /etc/vlan-nats/lab.key\n",
    )
    gk.add_argument("file", help="where to write it; - for standard output (base64)")
    gk.add_argument("--force", action="store_true", help="replace an existing file")

    hub = sub.add_parser(
        "hub",
        argument_default=argparse.SUPPRESS,
        help="run and supervise a nats-server for the nodes (no NATS needed)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run the nats-server that came with vlan-nats, with a generated "
        "configuration; restart it if it dies; stop it gracefully on SIGTERM.",
        epilog="examples:\n"
        "  vlan-nats hub --token-file /etc/vlan-nats/hub.token\n"
        "  vlan-nats hub --listen 198.18.0.1:4222 --cluster-listen 198.18.0.1:6222 "
        "--route nats://198.18.0.2:6222\n"
        "  vlan-nats hub --config /etc/vlan-nats/hub.toml --print-config\n",
    )
    hub.add_argument("--listen", metavar="HOST:PORT", help=f"clients (default {DEFAULT_LISTEN})")
    hub.add_argument(
        "--monitor",
        metavar="HOST:PORT",
        help=f"HTTP monitoring, or 'off' (default {DEFAULT_MONITOR})",
    )
    hub.add_argument("--token-file", metavar="FILE", help="clients need this token")
    hub.add_argument("--user", metavar="NAME", help="clients need this user ...")
    hub.add_argument("--password-file", metavar="FILE", help="... and this password")
    hub.add_argument("--tls-cert", metavar="FILE", help="server certificate: TLS on")
    hub.add_argument("--tls-key", metavar="FILE", help="server key")
    hub.add_argument("--tls-ca", metavar="FILE", help="require client certificates from this CA")
    hub.add_argument("--tls-first", action="store_true", help="TLS handshake before INFO")
    hub.add_argument("--cluster-listen", metavar="HOST:PORT", help="route port for other hubs")
    hub.add_argument("--cluster-name", metavar="NAME", help="default vlan-nats")
    hub.add_argument(
        "--route", action="append", metavar="URL", help="another hub's route URL, repeatable"
    )
    hub.add_argument("--server-name", metavar="NAME", help="default <hostname>-hub")
    hub.add_argument("--log-level", choices=LOG_LEVELS, help="default info")
    hub.add_argument("--config", metavar="FILE", help="TOML file with these options")
    hub.add_argument(
        "--print-config",
        action="store_true",
        help="print the generated nats-server configuration (secrets redacted) and exit",
    )

    inst = sub.add_parser(
        "install-systemd",
        help="install the systemd units vlan-nats@.service and vlan-nats-hub.service (root)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  sudo vlan-nats install-systemd\n"
        "  sudo systemctl enable --now vlan-nats@lab     # /etc/vlan-nats/lab.toml\n",
    )
    inst.add_argument(
        "--dir", default="/etc/systemd/system", help="where (default /etc/systemd/system)"
    )
    inst.add_argument("--no-reload", action="store_true", help="do not run systemctl daemon-reload")

    demo = sub.add_parser(
        "demo",
        help="run a 3-host demo in namespaces and check it (root)",
        epilog=DEMO_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
    return p


def _install_uvloop() -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - a dependency, but degrade anyway
        log.warning("uvloop not installed; using asyncio's default loop")
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


# `up` flags -> build() keywords (only those given: see argument_default).
_UP_FLAGS = {
    "server": "servers",
    "network": "network",
    "dev": "dev",
    "mac": "mac",
    "mtu": "mtu",
    "address": "addresses",
    "netns": "netns",
    "subject_prefix": "subject_prefix",
    "compat": "compat",
    "bridge": "bridge",
    "mac_ageing": "mac_ageing",
    "max_macs": "max_macs",
    "storm_pps": "storm_pps",
    "log_level": "log_level",
    "log_format": "log_format",
    "key_file": "key_file",
    "accept_key_file": "accept_key_file",
    "run_as": "run_as",
    "metrics_listen": "metrics_listen",
    **{k: k for k in AUTH_OPTIONS},
}


def up_config(args: argparse.Namespace) -> Config:
    given = vars(args)
    kw = {kw: given[flag] for flag, kw in _UP_FLAGS.items() if flag in given}
    if given.get("no_up"):
        kw["up"] = False
    if given.get("no_offload"):
        kw["offload"] = False
    if "config" in given:
        return configfile.build_from(given["config"], kw)
    return build(**kw)


def cmd_up(args: argparse.Namespace) -> int:
    cfg = up_config(args)
    setup_logging(cfg.log_level, cfg.log_format)
    from .daemon import Daemon

    _install_uvloop()
    asyncio.run(Daemon(cfg).run())
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


async def _client(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """A NATS client for the control-plane commands (ControlError if none)."""
    from .aio.ctlplane import connect_client

    servers = tuple(check_server_url(u) for u in (args.server or [DEFAULT_SERVER]))
    options = connect_options(build_auth(**{k: getattr(args, k) for k in AUTH_OPTIONS}))
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


def cmd_ping(args: argparse.Namespace) -> int:
    from .aio.ctlplane import gather_peers, ping_node

    scheme = _scheme(args)
    target = args.target.lower()

    async def run(nc):  # type: ignore[no-untyped-def]
        peers = await gather_peers(nc, scheme, args.timeout)
        match = [p for p in peers if target == p.node_id] or [
            p for p in peers if target in p.macs or target == p.hostname.lower()
        ]
        if not match:
            raise ControlError(
                f"no node with id, MAC or hostname {args.target!r} on network {scheme.network}"
            )
        if len(match) > 1 and target == match[0].hostname.lower():
            print(f"{len(match)} nodes on {args.target}; pinging {match[0].dev}", file=sys.stderr)
        node = match[0]
        lost = 0
        for i in range(args.count):
            rtt = await ping_node(nc, scheme, node.node_id, args.timeout)
            if rtt is None:
                lost += 1
                print(f"no reply from {node.hostname}/{node.dev} ({node.node_id}) seq={i}")
            else:
                print(
                    f"reply from {node.hostname}/{node.dev} ({node.node_id}) seq={i} "
                    f"rtt={rtt:.2f} ms"
                )
            if i + 1 < args.count:
                await asyncio.sleep(0.5)
        return lost

    lost = asyncio.run(_with_client(args, run))
    return 0 if lost < args.count else 1


def cmd_status(args: argparse.Namespace) -> int:
    from .views import problems_lines, status_table

    statuses = _local_statuses(args.dev)
    if not statuses:
        what = f"for {args.dev} " if args.dev else ""
        raise ControlError(f"no vlan-nats daemon {what}running on this host")
    if args.json:
        print(json.dumps(statuses, indent=2))
    else:
        print(status_table(statuses))
        for line in problems_lines(statuses):
            print(line)
    return 0


def _local_statuses(dev: str | None) -> list[dict[str, object]]:
    """Status documents of this host's daemons, in a stable order (netns,
    dev).  ControlError when there are sockets we may not read."""
    from .aio import statussock

    out = []
    refused = 0
    for path in statussock.sockets_for(dev):
        try:
            out.append(statussock.read(path))
        except PermissionError:
            refused += 1
        except OSError:
            continue  # left over by a daemon that was killed
    if refused and not out:
        raise ControlError(
            f"the status sockets in {statussock.RUN_DIR} are readable by root only "
            f"({refused} found): run with sudo"
        )
    return sorted(out, key=_daemon_key)


def _daemon_key(st: dict[str, object]) -> tuple[str, str]:
    """Daemons are told apart by (netns, dev): one device name may be used
    in several namespaces."""
    return (str(st.get("netns") or ""), str(st.get("dev")))


def cmd_top(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_top(args))
    except KeyboardInterrupt:  # the usual way to leave top
        return 0


async def _top(args: argparse.Namespace) -> int:
    from .aio.ctlplane import gather_peers
    from .views import top_local, top_peers

    scheme = _scheme(args)
    nc = await _client(args) if args.server else None
    tty = sys.stdout.isatty()
    try:
        local = True
        try:
            prev_local = {_daemon_key(s): s for s in _local_statuses(args.dev)}
        except ControlError as e:  # not root: the network view still works
            if nc is None:
                raise
            print(f"vlan-nats top: {e}; showing the network only", file=sys.stderr)
            local, prev_local = False, {}
        prev_peers = (
            {p.node_id: p for p in await gather_peers(nc, scheme, min(args.timeout, 0.5))}
            if nc
            else {}
        )
        if not prev_local and nc is None:
            what = f"for {args.dev} " if args.dev else ""
            raise ControlError(
                f"no vlan-nats daemon {what}running on this host (give --server for the network)"
            )
        t0 = time.monotonic()
        shown = 0
        while not args.count or shown < args.count:
            await asyncio.sleep(args.interval)
            cur_local = _local_statuses(args.dev) if local else []
            cur_peers = await gather_peers(nc, scheme, min(args.timeout, 0.5)) if nc else []
            t1 = time.monotonic()
            dt, t0 = t1 - t0, t1
            parts = [
                f"vlan-nats top  {time.strftime('%H:%M:%S')}  every {args.interval:g} s"
                + ("  (Ctrl-C to quit)" if tty else "")
            ]
            if cur_local:
                parts.append(top_local(cur_local, prev_local, dt))
            if nc is not None:
                parts.append(f"network {scheme.network}: {len(cur_peers)} nodes")
                parts.append(top_peers(cur_peers, prev_peers, dt))
            print(("\033[H\033[2J" if tty else "") + "\n\n".join(parts), flush=True)
            if not tty:
                print(flush=True)
            prev_local = {_daemon_key(s): s for s in cur_local}
            prev_peers = {p.node_id: p for p in cur_peers}
            shown += 1
    finally:
        if nc is not None:
            await nc.close()
    return 0


def cmd_completion(args: argparse.Namespace) -> int:
    from .completion import bash

    print(bash(make_parser()), end="")
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
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


def _hub_flags() -> dict[str, str]:
    """`hub` flags -> build_hub() keywords: the flags are named like the
    config file keys (``--route`` <-> ``route``)."""
    from .hub import HUB_KEYS

    return {key: kw for key, (kw, _) in HUB_KEYS.items()}


def cmd_hub(args: argparse.Namespace) -> int:
    from .hub import HUB_KEYS, Hub, build_hub, server_config

    given = vars(args)
    kw = {kw: given[flag] for flag, kw in _hub_flags().items() if flag in given}
    if "config" in given:
        values = configfile.load(given["config"], HUB_KEYS)
        values.pop("_text")
        kw = {**values, **kw}
    cfg = build_hub(**kw)
    if given.get("print_config"):
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
    if args.command not in ("up", "demo", "hub"):  # those set up logging from their options
        setup_logging("warning", "text")
    handler = {
        "up": cmd_up,
        "demo": cmd_demo,
        "peers": cmd_peers,
        "ping": cmd_ping,
        "status": cmd_status,
        "check-config": cmd_check_config,
        "genkey": cmd_genkey,
        "top": cmd_top,
        "completion": cmd_completion,
        "hub": cmd_hub,
        "install-systemd": cmd_install_systemd,
    }[args.command]
    try:
        return handler(args)
    except VlanNatsError as e:
        msg = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        print(f"vlan-nats {args.command}: error: {msg}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"vlan-nats {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
