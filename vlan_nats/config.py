"""Daemon configuration: a frozen dataclass built from flags and validated.

Everything a user can get wrong is checked here and reported as a
ConfigError naming the option, before any device is created.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import urlsplit

from . import natsctx, options
from .auth import OPTIONS as AUTH_OPTIONS
from .auth import NatsAuth, build_auth
from .core.mac import format_mac, is_unicast_assignable, parse_mac, random_mac, stable_mac
from .core.subjects import validate_network, validate_prefix
from .errors import ConfigError
from .keys import SealKeys
from .options import DEFAULT_SERVER, LOG_FORMATS, LOG_LEVELS, check_range
from .privdrop import RunAs, lookup

__all__ = [
    "Config",
    "DEFAULT_SERVER",
    "LOG_FORMATS",
    "LOG_LEVELS",
    "build",
    "check_server_url",
    "settings_of",
]

NATS_SCHEMES = ("nats", "tls", "ws", "wss")
MACHINE_ID_FILES = ("/etc/machine-id", "/var/lib/dbus/machine-id")
_IFNAME_RE = re.compile(r"^[^\s/:]{1,15}$")
_HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_][A-Za-z0-9_-]{0,62}(\.[A-Za-z0-9_-]{1,63})*$")


@dataclass(frozen=True, slots=True)
class Config:
    """Defaults live in options.py only: build() fills every field."""

    servers: tuple[str, ...]
    network: str
    dev: str
    mac: bytes
    mtu: int
    addresses: tuple[str, ...]  # static ones, CIDR
    address_auto: bool  # --address auto: one IPv4 address from the address service
    arp_routing: bool  # ARP requests to their target's subject (not with --compat)
    up: bool
    netns: str | None
    subject_prefix: str
    compat: bool
    offload: bool
    dataplane: str
    bridge: str | None
    mac_ageing: float
    max_macs: int
    storm_pps: float
    log_level: str
    log_format: str
    auth: NatsAuth
    seal: SealKeys | None
    run_as: RunAs | None
    metrics_listen: tuple[str, int] | None
    datapath_nice: int  # the frame-moving thread's nice value (0: left as is)

    @property
    def mac_text(self) -> str:
        return format_mac(self.mac)


def settings_of(cfg: Config, explicit_mac: bool) -> dict[str, object]:
    """The settings as plain values, to tell what a reload changed
    (core.settings.diff): files by path, not content (the daemon reads
    secrets and keys again anyway); the MAC only when given as one (a
    random or derived MAC is not a setting that changed)."""
    out: dict[str, object] = {}
    for f in fields(Config):
        v = getattr(cfg, f.name)
        if f.name == "mac":
            if not explicit_mac:
                continue
            v = cfg.mac_text
        elif f.name == "auth":
            a = cfg.auth
            v = (a.user, a.token_file, a.password_file, a.nkey_seed_file, a.creds_file,
                 a.tls_ca, a.tls_cert, a.tls_key, a.tls_first)  # fmt: skip
            if not any(v[1:]) and (a.token or a.password):  # from the environment
                v = (*v, "environment")
        elif f.name == "seal":
            v = (cfg.seal.key_file, cfg.seal.accept_file) if cfg.seal else None
        elif f.name == "run_as":
            v = cfg.run_as.name if cfg.run_as else None
        out[f.name] = v
    return out


def check_server_url(url: str) -> str:
    """A NATS server URL: nats/tls/ws/wss, a host, an optional port, no path
    (``host:port`` alone means ``nats://host:port``).  ConfigError."""
    try:
        parts = urlsplit(url if "://" in url else f"nats://{url}")
        port = parts.port
    except ValueError as e:
        raise ConfigError(f"bad --server {url!r}: {e}") from None
    if parts.scheme not in NATS_SCHEMES or not parts.hostname:
        raise ConfigError(
            f"bad --server {url!r}: expected e.g. nats://host:4222 "
            f"(schemes: {', '.join(NATS_SCHEMES)})"
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(f"bad --server {url!r}: expected e.g. nats://host:4222, with no path")
    host = parts.hostname
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not _HOSTNAME_RE.match(host):
            raise ConfigError(f"bad --server {url!r}: {host!r} is not a host name") from None
    if port == 0:
        raise ConfigError(f"bad --server {url!r}: port 0")
    return parts.geturl()


def parse_listen(value: str, what: str) -> tuple[str, int]:
    """HOST:PORT (``[::1]:9100`` for IPv6; ``:9100`` for all addresses)."""
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"bad {what} {value!r}: expected HOST:PORT, e.g. 127.0.0.1:9100")
    if host:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            if host != "localhost":
                raise ConfigError(f"bad {what} {value!r}: give an IP address") from None
    return host or "0.0.0.0", int(port)


def read_machine_id() -> str:
    for path in MACHINE_ID_FILES:
        try:
            with open(path) as f:
                text = f.read().strip()
        except OSError:
            continue
        if text:
            return text
    raise ConfigError(
        "no /etc/machine-id to derive a stable MAC from: pass --mac MAC or --mac random"
    )


def resolve_mac(text: str | None, network: str, dev: str, netns: str | None = None) -> bytes:
    """``None`` -> stable MAC from machine-id, network, device and the
    namespace the device will live in (``--netns``, else ours); ``random``;
    or an explicit MAC."""
    if text is None or text == "stable":
        from .control.netns import current

        where = netns if netns is not None else current()
        return stable_mac(read_machine_id(), network, dev, where)
    if text == "random":
        return random_mac(os.urandom(6))
    try:
        mac = parse_mac(text)
    except ValueError as e:
        raise ConfigError(f"bad --mac: {e}") from None
    if not is_unicast_assignable(mac):
        raise ConfigError(f"bad --mac {text!r}: must be a non-zero unicast address")
    return mac


@contextlib.contextmanager
def _about(option: str) -> Iterator[None]:
    """ConfigErrors raised inside are about ``option`` (unless they say)."""
    try:
        yield
    except ConfigError as e:
        if e.option is None:
            e.option = option
        raise


def check_numbers(v: dict[str, Any], command: str = "up") -> None:
    """Range-check ``command``'s numeric options, and give float options
    float values (TOML has ints)."""
    for o in options.for_command(command):
        if o.range is not None:
            check_range(o.flag, v[o.name], *o.range, unit=o.unit, option=o.name)
        if o.kind is float:
            v[o.name] = float(v[o.name])


def _addresses(given: Sequence[str]) -> tuple[str, ...]:
    addrs = []
    for a in given:
        if a == "auto":
            continue
        try:
            addrs.append(str(ipaddress.ip_interface(a)))
        except ValueError:
            raise ConfigError(
                f"bad --address {a!r}: expected CIDR such as 198.18.0.1/24, or auto",
                option="addresses",
            ) from None
        if "/" not in a:
            raise ConfigError(
                f"bad --address {a!r}: give a prefix length, e.g. {a}/24", option="addresses"
            )
    return tuple(addrs)


def _checked_names(v: dict[str, Any]) -> tuple[str, str, str]:
    """(network, subject prefix, device) of the raw values, checked."""
    try:
        network = validate_network(str(v["network"]))
    except ValueError as e:
        raise ConfigError(str(e), option="network") from None
    try:
        prefix = validate_prefix(v["subject_prefix"])
    except ValueError as e:
        raise ConfigError(str(e), option="subject_prefix") from None
    dev = v["dev"] or f"vnats{network}"
    if not _IFNAME_RE.match(dev):
        raise ConfigError(
            f"bad --dev {dev!r}: at most 15 characters, no spaces, '/' or ':'"
            + (" (a long network name needs --dev)" if dev.startswith("vnats") else ""),
            option="dev",
        )
    return network, prefix, dev


def _check_choices(v: dict[str, Any]) -> None:
    for o in options.for_command("up"):
        if o.choices is not None and v[o.name] not in o.choices:
            raise ConfigError(
                f"bad {o.flag} {v[o.name]!r}: one of {', '.join(o.choices)}", option=o.name
            )


def _seal(v: dict[str, Any]) -> SealKeys | None:
    if v["key_file"] is not None:
        if v["compat"]:
            raise ConfigError(
                "--key-file is not available with --compat (the Go original)", option="key_file"
            )
        seal = SealKeys(v["key_file"], v["accept_key_file"])
        try:
            seal.load()  # errors now, before any device exists
        except ConfigError as e:
            raise ConfigError(str(e), option="key_file") from None
        return seal
    if v["accept_key_file"] is not None:
        raise ConfigError(
            "--accept-key-file needs --key-file (the key that seals)", option="accept_key_file"
        )
    return None


def _filled(given: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """What is given, over the NATS context's and environment's (natsctx.py),
    and their password and token (values, not files)."""
    with _about("context"):
        out = natsctx.fill({k: x for k, x in given.items() if x is not None})
    return out, {k: out.pop(k, None) for k in ("password", "token")}


def build(**given: Any) -> Config:
    """Validate raw option values (options.py names; None or absent: the
    default) and build a Config.  Raises ConfigError naming the option."""
    v = options.defaults("up")
    if unknown := set(given) - set(v):
        raise TypeError(f"build() got unknown options {sorted(unknown)}")
    filled, secrets = _filled(given)
    v.update(filled)
    network, prefix, dev = _checked_names(v)
    if v["compat"] and not network.isdigit():
        raise ConfigError(
            "--compat needs a numeric --network (the Go original's VLAN ID)", option="compat"
        )
    with _about("servers"):
        urls = tuple(check_server_url(u) for u in v["servers"])
    check_numbers(v)
    _check_choices(v)
    netns, bridge = v["netns"], v["bridge"]
    if netns is not None and (not netns or "/" in netns or netns in (".", "..")):
        raise ConfigError(
            f"bad --netns {netns!r}: give the name of an existing namespace", option="netns"
        )
    if bridge is not None:
        if not _IFNAME_RE.match(bridge):
            raise ConfigError(
                f"bad --bridge {bridge!r}: give the name of an existing bridge", option="bridge"
            )
        if v["compat"]:
            raise ConfigError("--bridge is not available with --compat", option="bridge")
    with _about("mac"):
        mac = resolve_mac(v["mac"], network, dev, netns)
    with _about("user"):  # build_auth names the option it is about
        auth = build_auth(**{k: v[k] for k in AUTH_OPTIONS}, **secrets)
    with _about("run_as"):
        run_as = lookup(v["run_as"]) if v["run_as"] is not None else None
    with _about("metrics_listen"):
        listen = (
            parse_listen(v["metrics_listen"], "--metrics-listen") if v["metrics_listen"] else None
        )
    # An option whose value is used as given lands in the Config field of
    # its name; the others are the values worked out above.
    same = {f.name: v[f.name] for f in fields(Config) if f.name in v}
    return Config(
        **{
            **same,
            "servers": urls,
            "network": network,
            "dev": dev,
            "mac": mac,
            "addresses": _addresses(v["addresses"] or ()),
            "address_auto": "auto" in (v["addresses"] or ()),
            "subject_prefix": prefix,
            "offload": v["offload"] and not v["compat"],  # the Go original has no virtio header
            "arp_routing": v["arp_routing"] and not v["compat"],
            "auth": auth,
            "seal": _seal(v),
            "run_as": run_as,
            "metrics_listen": listen,
        }
    )
