"""A network's definition: the settings every node of one network shares,
kept in one JetStream KV entry (aio/netkv.py) and applied live by every
node (aio/netwatch.py).

Which settings belong to the network is the option table's ``network``
attribute (options.py); a value is checked by the same rules as the flag
or config-file key of that option.  The stored value is JSON::

    {"settings": {"mtu": 9000, "storm_pps": 500},
     "changed_by": "host1", "changed_at": 1765000000.0}

docs/wire-format.md describes the bucket and the keys.
"""

from __future__ import annotations

import json
import math
import socket
import time
from dataclasses import dataclass, field
from typing import Any, cast

from . import options
from .core.ipam import Pool, PoolError
from .errors import ConfigError
from .optiondef import Option, check_range

MAX_TEXT = 512  # a description, or any text value


def network_options() -> dict[str, Option]:
    """TOML key -> Option of every setting of the network."""
    return {o.toml_key or o.name: o for o in options.OPTIONS if o.network}


def parse_value(text: str) -> Any:
    """A value as given on the command line (``mtu=9000``): TOML when it
    reads as TOML (numbers, true/false, ["a", "b"]), else the text."""
    import tomllib

    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def check(key: str, value: Any) -> Any:
    """The value of setting ``key`` as the option's rules accept it (a
    list for a repeatable option); ConfigError naming the key otherwise."""
    opts = network_options()
    opt = opts.get(key)
    if opt is None:
        raise ConfigError(f"unknown network setting {key!r}: one of {', '.join(sorted(opts))}")
    if opt.many and isinstance(value, str):
        value = [value]
    if opt.many:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"bad {key} {value!r}: a text or a list of texts")
        return value
    if isinstance(value, bool) != (bool in opt.toml) or not isinstance(value, opt.toml):
        want = " or ".join(dict.fromkeys(_KIND_NAMES[t] for t in opt.toml))
        raise ConfigError(f"bad {key} {_text(value)}: expected {want}")
    if opt.kind is not None:
        number = float(cast(float, value))  # an int or a float: checked above
        if not math.isfinite(number):
            raise ConfigError(f"bad {key} {value!r}: not a number")
        if opt.range is not None:
            check_range(key, cast(float, value), opt.range[0], opt.range[1], opt.unit,
                        option=opt.name)  # fmt: skip
        return opt.kind(number)
    if opt.choices is not None and value not in opt.choices:
        raise ConfigError(f"bad {key} {value!r}: one of {', '.join(opt.choices)}")
    if isinstance(value, str) and len(value) > MAX_TEXT:
        raise ConfigError(f"bad {key}: longer than {MAX_TEXT} characters")
    if key == "pool":
        pool_of({"pool": value})
    return value


_KIND_NAMES = {bool: "true or false", int: "a number", float: "a number", str: "text"}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, str) else str(value)


def check_all(settings: dict[str, Any]) -> dict[str, Any]:
    """Every setting checked, and the address pool as a whole."""
    out = {k: check(k, v) for k, v in settings.items()}
    if "pool" in out or "range" in out or "exclude" in out:
        pool_of(out)
    return out


def pool_of(settings: dict[str, Any]) -> Pool | None:
    """The address pool the settings define (None: none)."""
    if "pool" not in settings:
        if "range" in settings or "exclude" in settings:
            raise ConfigError("range and exclude need a pool (pool=CIDR)")
        return None
    try:
        return Pool.parse(settings["pool"], settings.get("range"),
                          tuple(settings.get("exclude", ())))  # fmt: skip
    except PoolError as e:
        raise ConfigError(str(e)) from None


@dataclass(frozen=True)
class Definition:
    settings: dict[str, Any] = field(default_factory=dict)
    changed_by: str = ""
    changed_at: float = 0.0
    revision: int = 0  # the KV entry's (0: not stored)

    def encode(self) -> bytes:
        return json.dumps(
            {"settings": self.settings, "changed_by": self.changed_by,
             "changed_at": self.changed_at}, sort_keys=True,
        ).encode()  # fmt: skip

    def changed(self, settings: dict[str, Any]) -> Definition:
        """These settings, changed from this host now."""
        return Definition(check_all(settings), socket.gethostname(), time.time(), self.revision)


def decode(data: bytes, revision: int = 0) -> Definition:
    """A stored definition; ConfigError naming what is wrong (a value this
    release cannot accept: written by hand or by a newer release)."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise ConfigError("not JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("settings"), dict):
        raise ConfigError('not a definition: expected {"settings": {...}}')
    by, at = doc.get("changed_by", ""), doc.get("changed_at", 0.0)
    return Definition(
        check_all(doc["settings"]),
        by if isinstance(by, str) else "",
        float(at) if isinstance(at, (int, float)) and not isinstance(at, bool) else 0.0,
        revision,
    )


def node_keys() -> list[str]:
    """The network's settings a node applies itself (Config fields)."""
    from dataclasses import fields

    from .config import Config

    names = {f.name for f in fields(Config)}
    return [o.name for o in options.OPTIONS if o.network and o.name in names]


def effective(
    own: dict[str, Any], explicit: frozenset[str], settings: dict[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """What a node runs: the network's value of each of its settings,
    unless the node was given its own explicitly (a flag or its config
    file; a default is not explicit).  ``own``: the node's values (flags,
    file, defaults).  Returns (values, overrides: one line per explicit
    value that differs from the network's)."""
    out, overrides = dict(own), []
    for key in node_keys():
        if key not in settings:
            continue
        if key in explicit:
            if own[key] != settings[key]:
                opt = network_options()[key]
                name = opt.flag if opt.switch is None else key  # --mtu; arp_routing
                overrides.append(
                    f"local {name} {_text(own[key])} overrides the network's {_text(settings[key])}"
                )
            continue
        out[key] = settings[key]
    return out, overrides
