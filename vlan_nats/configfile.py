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

from .config import Config, build
from .errors import ConfigError

# key -> (build() keyword, accepted TOML types)
KEYS: dict[str, tuple[str, tuple[type, ...]]] = {
    "server": ("servers", (str, list)),
    "network": ("network", (str, int)),
    "dev": ("dev", (str,)),
    "mac": ("mac", (str,)),
    "mtu": ("mtu", (int,)),
    "address": ("addresses", (str, list)),
    "up": ("up", (bool,)),
    "netns": ("netns", (str,)),
    "subject_prefix": ("subject_prefix", (str,)),
    "compat": ("compat", (bool,)),
    "offload": ("offload", (bool,)),
    "bridge": ("bridge", (str,)),
    "mac_ageing": ("mac_ageing", (int, float)),
    "max_macs": ("max_macs", (int,)),
    "storm_pps": ("storm_pps", (int, float)),
    "log_level": ("log_level", (str,)),
    "log_format": ("log_format", (str,)),
    "user": ("user", (str,)),
    "password_file": ("password_file", (str,)),
    "token_file": ("token_file", (str,)),
    "nkey": ("nkey", (str,)),
    "creds": ("creds", (str,)),
    "tls_ca": ("tls_ca", (str,)),
    "tls_cert": ("tls_cert", (str,)),
    "tls_key": ("tls_key", (str,)),
    "tls_first": ("tls_first", (bool,)),
    "key_file": ("key_file", (str,)),
    "accept_key_file": ("accept_key_file", (str,)),
    "run_as": ("run_as", (str,)),
    "metrics_listen": ("metrics_listen", (str,)),
}
# How build()'s messages name each option, longest first ("--mac-ageing"
# before "--mac").
_MENTIONS = sorted(
    [(f"--{k.replace('_', '-')}", k) for k in KEYS]
    + [("network", "network"), ("prefix", "subject_prefix")],
    key=lambda m: -len(m[0]),
)


def _line_of(text: str, key: str) -> int | None:
    """The line where ``key`` is set (``key =`` or a ``[key]`` table)."""
    name = key.replace("_", "[-_]")
    pattern = re.compile(rf"^[ \t]*(?:[\"']?{name}[\"']?[ \t]*=|\[[ \t]*{name}[ \t]*\])", re.M)
    m = pattern.search(text)
    return text.count("\n", 0, m.start()) + 1 if m else None


def _where(path: Path, line: int | None) -> str:
    return f"{path}:{line}" if line else str(path)


def load(
    path: str | Path, keys: dict[str, tuple[str, tuple[type, ...]]] | None = None
) -> dict[str, Any]:
    """The file's settings as keywords (``keys``: for another command than
    ``up``).  Raises ConfigError."""
    keys = KEYS if keys is None else keys
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
        where = _where(path, _line_of(text, key))
        if key not in keys:
            raise ConfigError(f"{where}: unknown key {raw!r} (known: {', '.join(keys)})")
        kw, types = keys[key]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            names = " or ".join(t.__name__.replace("str", "string") for t in types)
            raise ConfigError(f"{where}: {raw} must be a {names}, not {value!r}")
        if isinstance(value, list) and not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: {raw} must be a list of strings")
        if key in ("server", "address", "route") and isinstance(value, str):
            value = [value]
        out[kw] = str(value) if key == "network" else value
    out["_text"] = text
    return out


def build_from(path: str | Path, overrides: dict[str, Any] | None = None) -> Config:
    """Config from a file plus command-line overrides; errors carry the line."""
    path = Path(path)
    values = load(path)
    text = values.pop("_text")
    merged = {**values, **(overrides or {})}
    try:
        return build(**merged)
    except ConfigError as e:
        msg = str(e)
        for mention, key in _MENTIONS:
            if mention in msg and KEYS[key][0] in values and KEYS[key][0] not in (overrides or {}):
                raise ConfigError(f"{_where(path, _line_of(text, key))}: {msg}") from None
        raise
