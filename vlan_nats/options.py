"""Every option of ``up``, ``hub`` and the control-plane commands, declared once.

Each declaration gives the flag, the TOML key (``--config`` files), the
type, the default, the help text, the commands that take it and whether
it names a secret.  Generated from it: the argparse arguments (with the
default in ``--help``), the TOML loader's keys and types (configfile.py),
and the defaults of ``config.build()`` / ``hub.build_hub()``.  Adding an
option means adding one ``Option`` here and using its value where it
matters.

Commands: ``up``, ``hub``, and ``client`` (peers, ping, top: the NATS
connection and network of the control plane).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterator
from typing import Any

from .optiondef import (
    AUTH,
    DEFAULT_LISTEN,
    DEFAULT_MONITOR,
    DEFAULT_SERVER,
    DEFAULT_STORE,
    LOG_FORMATS,
    LOG_LEVELS,
    LOOPBACK_LISTEN,
    SEALING,
    Option,
    auth_option,
    check_range,
    ranged,
)
from .options_services import SERVICE_OPTIONS

__all__ = [
    "DEFAULT_LISTEN", "DEFAULT_MONITOR", "DEFAULT_SERVER", "DEFAULT_STORE", "LOG_FORMATS",
    "LOG_LEVELS", "LOOPBACK_LISTEN", "OPTIONS", "Option", "add_arguments", "check_range",
    "defaults", "for_command", "ranged", "toml_keys",
]  # fmt: skip

OPTIONS: tuple[Option, ...] = (
    # -- the NATS connection and the network --------------------------------
    Option(
        "servers",
        "--server",
        "NATS server URL, repeatable",
        default=(DEFAULT_SERVER,),
        shown=DEFAULT_SERVER,
        commands=("up", "client"),
        many=True,
        metavar="URL",
        toml=(str, list),
        key="server",
    ),
    Option(
        "network",
        "--network",
        "VLAN ID 0-4095 or a name of [A-Za-z0-9_-]",
        default="0",
        commands=("up", "client"),
        metavar="ID",
        toml=(str, int),
    ),
    # -- the device ---------------------------------------------------------
    Option("dev", "--dev", "TAP device name", shown="vnats<ID>", metavar="NAME"),
    Option(
        "mac",
        "--mac",
        "MAC address, or 'random'",
        shown="stable, from /etc/machine-id, network, device and namespace",
        metavar="MAC",
    ),
    Option(
        "mtu",
        "--mtu",
        "MTU",
        default=1500,
        kind=int,
        toml=(int,),
        metavar="N",
        range=(68, 65535),
        network=True,
    ),
    Option(
        "addresses",
        "--address",
        "add this address to the device, repeatable (ip addr add works too); "
        "auto: an IPv4 address from the address service (vlan-nats ipam)",
        many=True,
        metavar="CIDR",
        toml=(str, list),
        key="address",
    ),
    Option("up", "--no-up", "leave the link down", default=True, switch=False, toml=(bool,)),
    Option(
        "netns",
        "--netns",
        "move the device into this existing namespace (NATS stays reachable from here)",
        metavar="NAME",
    ),
    Option(
        "subject_prefix",
        "--subject-prefix",
        "first subject token(s)",
        default="vlan",
        commands=("up", "client", "hub"),
        metavar="PREFIX",
    ),
    Option(
        "compat",
        "--compat",
        "interoperate with rapidloop's Go vlan-nats: raw frames, its subjects",
        default=False,
        switch=True,
        toml=(bool,),
    ),
    Option(
        "offload",
        "--no-offload",
        "do not negotiate checksum/segmentation offloads (frames at most MTU-sized)",
        default=True,
        switch=False,
        toml=(bool,),
    ),
    Option(
        "dataplane",
        "--dataplane",
        "which datapath moves the frames: c (libnats, own threads), python (asyncio), "
        "auto: c when this installation has it and the settings allow it",
        default="auto",
        choices=("auto", "c", "python"),
    ),
    Option(
        "datapath_nice",
        "--datapath-nice",
        "the nice value of the thread that moves frames (the C datapath's thread, the python "
        "datapath's event loop): below 0 it runs ahead of ordinary processes, as the kernel's "
        "own network stack does; 0 leaves it as the process's",
        default=-10,
        kind=int,
        toml=(int,),
        metavar="N",
        range=(-20, 19),
    ),
    # -- switching ----------------------------------------------------------
    Option(
        "bridge",
        "--bridge",
        "enslave the TAP to this existing Linux bridge (in --netns if given): "
        "learn the MACs behind it",
        metavar="BR",
    ),
    Option(
        "mac_ageing",
        "--mac-ageing",
        "bridge mode: forget a MAC idle this long",
        default=300.0,
        shown="300",
        kind=float,
        toml=(int, float),
        metavar="S",
        range=(1, 86400),
        unit="seconds",
        network=True,
    ),
    Option(
        "max_macs",
        "--max-macs",
        "bridge mode: MACs learned behind the bridge at most",
        default=4096,
        kind=int,
        toml=(int,),
        metavar="N",
        range=(1, 1_000_000),
        network=True,
    ),
    Option(
        "storm_pps",
        "--storm-pps",
        "cap on broadcast+multicast+unknown-unicast frames sent, per second",
        default=1000.0,
        shown="1000, 0: off",
        kind=float,
        toml=(int, float),
        metavar="PPS",
        range=(0, None),
        unit="(0: off)",
        network=True,
    ),
    Option(
        "arp_routing",
        "--no-arp-routing",
        "send ARP requests to the broadcast subject, as earlier releases did, and "
        "listen to no ARP subject (routed ARP: docs/wire-format.md)",
        default=True,
        switch=False,
        toml=(bool,),
        network=True,
    ),
    # -- logging ------------------------------------------------------------
    Option("log_level", "--log-level", "log level", default="info", choices=LOG_LEVELS),
    Option("log_format", "--log-format", "log format", default="text", choices=LOG_FORMATS),
    # -- NATS authentication and TLS (client side) --------------------------
    Option(
        "context",
        "--context",
        "a nats CLI context (~/.config/nats/context/NAME.json): its server, credentials and TLS "
        "files, below flags and the config file, above NATS_URL and the other NATS_* variables "
        "(default: $NATS_CONTEXT, else the one `nats context select` chose)",
        commands=("up", "client"),
        metavar="NAME",
        group=AUTH,
    ),
    auth_option("user", "NATS user (password from --password-file or $VLAN_NATS_PASSWORD)", "NAME"),
    auth_option("password_file", "file holding the password", secret=True),
    auth_option("token_file", "file holding a NATS token (or $VLAN_NATS_TOKEN)", secret=True),
    auth_option("nkey", "file holding a user nkey seed", "SEEDFILE", secret=True),
    auth_option("creds", "user JWT credentials file (.creds, operator mode)", secret=True),
    auth_option("tls_ca", "CA bundle to verify the server"),
    auth_option("tls_cert", "client certificate (mutual TLS)"),
    auth_option("tls_key", "client key (mutual TLS)", secret=True),
    Option(
        "tls_first",
        "--tls-first",
        "TLS handshake before the NATS INFO (servers with handshake_first)",
        default=False,
        commands=("up", "client"),
        switch=True,
        toml=(bool,),
        group=AUTH,
    ),
    # -- sealing ------------------------------------------------------------
    Option(
        "key_file",
        "--key-file",
        "seal every frame with this 32-byte key and accept only frames sealed "
        "with it (make one with: vlan-nats genkey FILE); SIGHUP re-reads it",
        metavar="FILE",
        secret=True,
        group=SEALING,
    ),
    Option(
        "accept_key_file",
        "--accept-key-file",
        "also accept frames sealed with this key (key rollover)",
        metavar="FILE",
        secret=True,
        group=SEALING,
    ),
    # -- operations ---------------------------------------------------------
    Option(
        "metrics_listen",
        "--metrics-listen",
        "serve Prometheus metrics at http://HOST:PORT/metrics",
        commands=("up", "hub"),
        metavar="HOST:PORT",
    ),
    Option(
        "run_as",
        "--run-as",
        "after set-up, drop root: become USER, keep only CAP_NET_ADMIN (docs/security.md)",
        metavar="USER",
    ),
    Option(
        "timeout",
        "--timeout",
        "how long to wait for replies",
        default=1.0,
        shown="1",
        commands=("client",),
        kind=float,
        metavar="S",
        key=None,
        range=(0.01, 3600),
    ),

)
OPTIONS += SERVICE_OPTIONS


def for_command(command: str) -> Iterator[Option]:
    return (o for o in OPTIONS if command in o.commands)


def defaults(command: str) -> dict[str, Any]:
    """build()'s starting point: every option of ``command`` at its default."""
    return {o.name: o.default for o in for_command(command)}


def toml_keys(command: str) -> dict[str, Option]:
    """The keys a ``--config`` file of ``command`` may set."""
    return {k: o for o in for_command(command) if (k := o.toml_key) is not None}


def add_arguments(
    parser: argparse.ArgumentParser,
    command: str,
    given_only: bool = False,
    exclude: tuple[str, ...] = (),
) -> None:
    """Add ``command``'s options (but those named in ``exclude``).
    ``given_only``: leave options that are not on the command line out of
    the namespace (so that they do not override a config file; build()
    supplies the defaults)."""
    groups: dict[str, argparse._ArgumentGroup] = {}
    for o in (o for o in for_command(command) if o.name not in exclude):
        target: Any = parser
        if o.group is not None:
            if o.group not in groups:
                groups[o.group] = parser.add_argument_group(o.group)
            target = groups[o.group]
        kw: dict[str, Any] = {"dest": o.name, "help": o.help_text()}
        if given_only:
            kw["default"] = argparse.SUPPRESS
        elif o.switch is None:
            kw["default"] = list(o.default) if o.many and o.default else o.default
        if o.switch is not None:
            kw["action"] = "store_true" if o.switch else "store_false"
            if not given_only:
                kw["default"] = o.default
        else:
            kw["metavar"] = o.metavar
            if o.many:
                kw["action"] = "append"
                if not given_only:
                    kw["default"] = None  # append would add to a default list
            if o.kind is not None and given_only:
                # up/hub: build() checks the range, for flags and files alike.
                kw["type"] = o.kind
            elif o.kind is not None:
                low, high = o.range if o.range is not None else (-math.inf, None)
                kw["type"] = ranged(o.kind, o.flag, low, high)
            if o.choices is not None:
                kw["choices"] = o.choices
        target.add_argument(o.flag, **kw)
