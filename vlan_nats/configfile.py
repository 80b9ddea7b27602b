"""TOML configuration files: ``vlan-nats up --config FILE`` and
``vlan-nats check-config FILE``.

Every ``up`` option is a key, spelled with ``_`` or ``-``; flags given on the
command line override the file.  Example::

    server = ["nats://198.18.0.10:4222", "nats://198.18.0.11:4222"]
    network = 7
    address = ["198.18.100.1/24"]
    mtu = 9000
    bridge = "br0"
    storm_pps = 2000

Errors name the file and, where they can be pinned, the line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from . import options
from .config import Config, build
from .errors import ConfigError


def line_of(text: str, key: str) -> int | None:
    """The line where ``key`` is set (``key =`` or a ``[key]`` table)."""
    name = key.replace("_", "[-_]")
    pattern = re.compile(rf"^[ \t]*(?:[\"']?{name}[\"']?[ \t]*=|\[[ \t]*{name}[ \t]*\])", re.M)
    m = pattern.search(text)
    return text.count("\n", 0, m.start()) + 1 if m else None


def _where(path: Path, line: int | None) -> str:
    return f"{path}:{line}" if line else str(path)


def read(path: str | Path, command: str = "up") -> tuple[dict[str, Any], str]:
    """The settings of ``command``'s config file, by option name, and the
    file's text.  Raises ConfigError naming the file and line."""
    keys = options.toml_keys(command)
    import tomllib  # here, not at the top: 1.4 MB a daemon without a file need not carry

    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"cannot read config {path}: {e.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"line (\d+)", str(e))
        raise ConfigError(f"{_where(path, int(m.group(1)) if m else None)}: {e}") from None
    out: dict[str, Any] = {}
    for raw, value in data.items():
        key = raw.replace("-", "_")
        where = _where(path, line_of(text, key))
        opt = keys.get(key)
        if opt is None:
            raise ConfigError(f"{where}: unknown key {raw!r} (known: {', '.join(keys)})")
        types = opt.toml
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            names = " or ".join(t.__name__.replace("str", "string") for t in types)
            raise ConfigError(f"{where}: {raw} must be a {names}, not {value!r}")
        if isinstance(value, list) and not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: {raw} must be a list of strings")
        if opt.many and isinstance(value, str):
            value = [value]
        elif opt.kind is None and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # network = 7
        out[opt.name] = value
    return out, text


def looks_like_hub(path: str | Path) -> bool:
    """A file for ``vlan-nats hub``: it has a key only the hub takes
    (``listen``, ``store``, ``ipam`` ...).  False when it cannot be read
    or parsed: checking it as an ``up`` file then names the error."""
    import tomllib

    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    hub_only = set(options.toml_keys("hub")) - set(options.toml_keys("up"))
    return any(k.replace("-", "_") in hub_only for k in data)


def locate(e: ConfigError, path: Path, text: str, command: str, from_file: set[str]) -> ConfigError:
    """``e`` with the file and line of the option it is about, when that
    option's value came from the file."""
    if e.option is None or e.option not in from_file:
        return e
    opt = next((o for o in options.for_command(command) if o.name == e.option), None)
    key = opt.toml_key if opt is not None else None
    if key is None:
        return e
    return ConfigError(f"{_where(path, line_of(text, key))}: {e}", option=e.option)


def build_from(path: str | Path, overrides: dict[str, Any] | None = None) -> Config:
    """Config from a file plus command-line overrides; errors carry the line."""
    path = Path(path)
    values, text = read(path)
    overrides = overrides or {}
    try:
        return build(**{**values, **overrides})
    except ConfigError as e:
        raise locate(e, path, text, "up", set(values) - set(overrides)) from None
