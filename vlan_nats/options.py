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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError

DEFAULT_SERVER = "nats://127.0.0.1:4222"
DEFAULT_LISTEN = "0.0.0.0:4222"
# A hub without authentication serves this host only, unless told otherwise.
LOOPBACK_LISTEN = "127.0.0.1:4222"
DEFAULT_MONITOR = "127.0.0.1:8222"
DEFAULT_STORE = "/var/lib/vlan-nats-hub"  # the unit's StateDirectory
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")

AUTH = "NATS authentication and TLS"
SEALING = "end-to-end sealing (docs/security.md)"


@dataclass(frozen=True, slots=True)
class Option:
    name: str  # the keyword of build()/build_hub(); the argparse dest
    flag: str  # "--mac-ageing"
    help: str
    default: Any = None
    commands: tuple[str, ...] = ("up",)
    kind: type[int] | type[float] | None = None  # numbers: int or float (None: text)
    toml: tuple[type, ...] = (str,)  # accepted TOML value types
    many: bool = False  # repeatable flag; a string or a list in TOML
    switch: bool | None = None  # a flag without value: the value it sets
    choices: tuple[str, ...] | None = None
    metavar: str | None = None
    shown: str | None = None  # the default as --help shows it (None: from default)
    key: str | None = ""  # TOML key ("" : from the flag; None: not in files)
    secret: bool = False  # names a file holding a secret or a key
    group: str | None = None  # argparse group title
    range: tuple[float, float | None] | None = None  # numbers: [low, high]
    unit: str = ""  # for the range's error message

    @property
    def toml_key(self) -> str | None:
        if self.key is None:
            return None
        return self.key or self.flag.removeprefix("--").removeprefix("no-").replace("-", "_")

    def help_text(self) -> str:
        shown = self.shown
        # Identity for the flags' values: 1 == True and 0 == False.
        hidden = self.default is None or isinstance(self.default, bool) or self.default == ()
        if shown is None and not hidden:
            shown = str(self.default)
        return f"{self.help} (default {shown})" if shown else self.help


def check_range(
    what: str,
    value: float,
    low: float,
    high: float | None = None,
    unit: str = "",
    option: str | None = None,
) -> float:
    """The one check for numeric options: finite and within [low, high]."""
    ok = isinstance(value, (int, float)) and math.isfinite(value) and value >= low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        bounds = f"{low:g}-{high:g}" if high is not None else f">= {low:g}"
        raise ConfigError(
            f"bad {what} {value}: must be {bounds}{' ' + unit if unit else ''}", option=option
        )
    return value


def ranged(
    kind: type[int] | type[float], flag: str, low: float, high: float | None = None
) -> Callable[[str], float]:
    """An argparse type: a number checked by check_range."""

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


def _auth(name: str, help: str, metavar: str = "FILE", secret: bool = False) -> Option:
    """A client-side NATS credential or TLS file (``up`` and the control commands)."""
    flag = "--" + name.replace("_", "-")
    return Option(
        name, flag, help, commands=("up", "client"), metavar=metavar, secret=secret, group=AUTH
    )


def _hub(name: str, help: str, metavar: str = "FILE", secret: bool = False, **kw: Any) -> Option:
    """A hub (server-side) option."""
    flag = "--" + name.replace("_", "-")
    return Option(name, flag, help, commands=("hub",), metavar=metavar, secret=secret, **kw)


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
    ),
    Option(
        "arp_routing",
        "--no-arp-routing",
        "send ARP requests to the broadcast subject, as earlier releases did, and "
        "listen to no ARP subject (routed ARP: docs/wire-format.md)",
        default=True,
        switch=False,
        toml=(bool,),
    ),
    # -- logging ------------------------------------------------------------
    Option("log_level", "--log-level", "log level", default="info", choices=LOG_LEVELS),
    Option("log_format", "--log-format", "log format", default="text", choices=LOG_FORMATS),
    # -- NATS authentication and TLS (client side) --------------------------
    _auth("user", "NATS user (password from --password-file or $VLAN_NATS_PASSWORD)", "NAME"),
    _auth("password_file", "file holding the password", secret=True),
    _auth("token_file", "file holding a NATS token (or $VLAN_NATS_TOKEN)", secret=True),
    _auth("nkey", "file holding a user nkey seed", "SEEDFILE", secret=True),
    _auth("creds", "user JWT credentials file (.creds, operator mode)", secret=True),
    _auth("tls_ca", "CA bundle to verify the server"),
    _auth("tls_cert", "client certificate (mutual TLS)"),
    _auth("tls_key", "client key (mutual TLS)", secret=True),
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
    # -- the address service (vlan-nats ipam) ---------------------------------
    Option(
        "pool",
        "--pool",
        "the IPv4 network whose addresses are handed out",
        commands=("ipam",),
        metavar="CIDR",
    ),
    Option(
        "range",
        "--range",
        "only these addresses of the pool",
        shown="all hosts of the pool",
        commands=("ipam",),
        metavar="FIRST-LAST",
    ),
    Option(
        "lease",
        "--lease",
        "lease time of the address service; clients renew at half of it",
        default=3600.0,
        shown="3600",
        commands=("ipam", "hub"),
        kind=float,
        toml=(int, float),
        metavar="S",
        range=(10, 31_536_000),
        unit="seconds",
    ),
    Option(
        "exclude",
        "--exclude",
        "never hand out this address, repeatable",
        commands=("ipam",),
        many=True,
        metavar="ADDR",
        toml=(str, list),
    ),
    Option(
        "replicas",
        "--replicas",
        "JetStream replicas of the address service's lease bucket (a cluster: 3)",
        default=1,
        commands=("ipam", "hub"),
        kind=int,
        toml=(int,),
        metavar="N",
        range=(1, 5),
    ),
    # -- hub ----------------------------------------------------------------
    _hub(
        "listen",
        "clients (without authentication: 127.0.0.1:4222, and only loopback)",
        "HOST:PORT",
        shown=DEFAULT_LISTEN,
    ),
    _hub("monitor", "HTTP monitoring, or 'off'", "HOST:PORT", default=DEFAULT_MONITOR),
    _hub("token_file", "clients need this token", secret=True),
    _hub("user", "clients need this user ...", "NAME"),
    _hub("password_file", "... and this password", secret=True),
    Option(
        "allow_anonymous",
        "--allow-anonymous",
        "serve clients without authentication on a non-loopback --listen "
        "(anyone who reaches the port joins every network)",
        default=False,
        commands=("hub",),
        switch=True,
        toml=(bool,),
    ),
    _hub("tls_cert", "server certificate: TLS on"),
    _hub("tls_key", "server key", secret=True),
    _hub("tls_ca", "require client certificates from this CA"),
    Option(
        "tls_first",
        "--tls-first",
        "TLS handshake before INFO",
        default=False,
        commands=("hub",),
        switch=True,
        toml=(bool,),
    ),
    _hub("cluster_listen", "route port for other hubs", "HOST:PORT"),
    _hub("cluster_name", "cluster name", "NAME", default="vlan-nats"),
    Option(
        "routes",
        "--route",
        "another hub's route URL, repeatable",
        commands=("hub",),
        many=True,
        metavar="URL",
        toml=(str, list),
        key="route",
    ),
    _hub("server_name", "nats-server's name", "NAME", shown="<hostname>-hub"),
    _hub(
        "store",
        "JetStream's store directory (the address service keeps its leases there), or 'off'",
        "DIR",
        default=DEFAULT_STORE,
    ),
    Option(
        "ipam",
        "--ipam",
        "run an address service for this network and pool in the hub, repeatable "
        "(as vlan-nats ipam does; clients: up --address auto)",
        commands=("hub",),
        many=True,
        metavar="NETWORK=CIDR",
        toml=(str, list),
    ),
    Option(
        "log_level",
        "--log-level",
        "log level",
        default="info",
        commands=("hub",),
        choices=LOG_LEVELS,
    ),
)


def for_command(command: str) -> Iterator[Option]:
    return (o for o in OPTIONS if command in o.commands)


def defaults(command: str) -> dict[str, Any]:
    """build()'s starting point: every option of ``command`` at its default."""
    return {o.name: o.default for o in for_command(command)}


def toml_keys(command: str) -> dict[str, Option]:
    """The keys a ``--config`` file of ``command`` may set."""
    return {k: o for o in for_command(command) if (k := o.toml_key) is not None}


def add_arguments(parser: argparse.ArgumentParser, command: str, given_only: bool = False) -> None:
    """Add ``command``'s options.  ``given_only``: leave options that are
    not on the command line out of the namespace (so that they do not
    override a config file; build() supplies the defaults)."""
    groups: dict[str, argparse._ArgumentGroup] = {}
    for o in for_command(command):
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
