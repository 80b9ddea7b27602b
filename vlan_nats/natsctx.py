"""The NATS CLI's connection settings, so that a NATS user types them once:
its contexts (``~/.config/nats/context/NAME.json``, chosen with
``--context NAME``, ``$NATS_CONTEXT`` or ``nats context select``) and its
environment (``NATS_URL``, ``NATS_USER``, ``NATS_PASSWORD``, ``NATS_CREDS``,
``NATS_NKEY``, ``NATS_CERT``, ``NATS_KEY``, ``NATS_CA``).

Precedence: flag > config file > context > environment > default.  The
credentials go as one: a user, token, nkey or creds given at one level
hides every credential of the levels below (a --token-file on the command
line and a user in the context are not a conflict).  A context that
cannot be read, or that names a file that does not exist, is one line.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import ConfigError

# Our option names that are credentials (the password and token are the
# values a context or the environment holds, not files).
CREDENTIALS = ("user", "password", "token", "password_file", "token_file", "nkey", "creds")
# context key -> our option name; the files are checked when read.
_FIELDS = {"user": "user", "password": "password", "token": "token", "creds": "creds",
           "nkey": "nkey", "cert": "tls_cert", "key": "tls_key", "ca": "tls_ca"}  # fmt: skip
_FILES = ("creds", "nkey", "tls_cert", "tls_key", "tls_ca")
_ENV = {"NATS_USER": "user", "NATS_PASSWORD": "password", "NATS_CREDS": "creds",
        "NATS_NKEY": "nkey", "NATS_CERT": "tls_cert", "NATS_KEY": "tls_key",
        "NATS_CA": "tls_ca"}  # fmt: skip


def config_dir(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or "~").expanduser() / ".config")
    return Path(base) / "nats"


def selected(given: str | None, env: Mapping[str, str]) -> str | None:
    """The context in use: --context, else $NATS_CONTEXT, else the one
    ``nats context select`` chose (context.txt), else none."""
    if given:
        return given
    if env.get("NATS_CONTEXT"):
        return env["NATS_CONTEXT"]
    try:
        name = (config_dir(env) / "context.txt").read_text().strip()
    except OSError:
        return None
    return name or None


def read_context(name: str, env: Mapping[str, str]) -> dict[str, Any]:
    """The settings of context ``name`` by our option names (ConfigError
    if it cannot be read or names a missing file)."""
    if not name or "/" in name or name in (".", ".."):
        raise ConfigError(f"bad --context {name!r}: give a context's name", option="context")
    path = config_dir(env) / "context" / f"{name}.json"
    try:
        doc = json.loads(path.read_text())
    except OSError as e:
        raise ConfigError(f"context {name}: cannot read {path}: {e.strerror}",
                          option="context") from None  # fmt: skip
    except (ValueError, UnicodeDecodeError) as e:
        raise ConfigError(f"context {name}: {path} is not JSON: {e}", option="context") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"context {name}: {path} is not a JSON object", option="context")
    out: dict[str, Any] = {}
    url = doc.get("url")
    if isinstance(url, str) and url.strip():
        out["servers"] = tuple(u.strip() for u in url.split(",") if u.strip())
    for key, option in _FIELDS.items():
        value = doc.get(key)
        if isinstance(value, str) and value:
            out[option] = str(Path(value).expanduser()) if option in _FILES else value
    if doc.get("tls_first") is True:
        out["tls_first"] = True
    for option in _FILES:
        if option in out and not os.path.exists(out[option]):
            raise ConfigError(f"context {name} ({path}) names a {option.replace('_', ' ')} file "
                              f"that does not exist: {out[option]}", option="context")  # fmt: skip
    return out


def from_environment(env: Mapping[str, str]) -> dict[str, Any]:
    """The settings of the NATS CLI's environment variables.  As there,
    NATS_USER without NATS_PASSWORD is a token."""
    out: dict[str, Any] = {opt: env[var] for var, opt in _ENV.items() if env.get(var)}
    if env.get("NATS_URL"):
        out["servers"] = tuple(u.strip() for u in env["NATS_URL"].split(",") if u.strip())
    if "user" in out and "password" not in out:
        out["token"] = out.pop("user")
    return out


def fill(given: dict[str, Any], env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``given`` (flags over the config file; None: not given) with what
    the context and the environment add below it."""
    env = os.environ if env is None else env
    name = selected(given.get("context"), env)
    below = from_environment(env)
    if name is not None:
        ctx = read_context(name, env)
        if any(k in ctx for k in CREDENTIALS):
            below = {k: v for k, v in below.items() if k not in CREDENTIALS}
        below.update(ctx)
    out = dict(given)
    has_credentials = any(given.get(k) is not None for k in CREDENTIALS)
    for key, value in below.items():
        if out.get(key) is None and not (key in CREDENTIALS and has_credentials):
            out[key] = value
    return out
