"""The parts options.py declares options with: the Option record, the
range checks, and the defaults shared by several options."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
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
    # A setting of the network as a whole: it may be set once for every node
    # in the network's definition (vlan-nats network set, netdef.py).
    network: bool = False

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


def auth_option(name: str, help: str, metavar: str = "FILE", secret: bool = False) -> Option:
    """A client-side NATS credential or TLS file (``up`` and the control commands)."""
    flag = "--" + name.replace("_", "-")
    return Option(
        name, flag, help, commands=("up", "client"), metavar=metavar, secret=secret, group=AUTH
    )


def hub_option(
    name: str, help: str, metavar: str = "FILE", secret: bool = False, **kw: Any
) -> Option:
    """A hub (server-side) option."""
    flag = "--" + name.replace("_", "-")
    return Option(name, flag, help, commands=("hub",), metavar=metavar, secret=secret, **kw)
