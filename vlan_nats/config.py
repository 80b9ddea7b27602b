"""Daemon configuration: a frozen dataclass built from flags and validated.

Everything a user can get wrong is checked here and reported as a
ConfigError naming the option, before any device is created.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from .auth import NatsAuth, build_auth
from .core.mac import format_mac, is_unicast_assignable, parse_mac, random_mac, stable_mac
from .core.subjects import validate_network, validate_prefix
from .errors import ConfigError
from .keys import SealKeys
from .privdrop import RunAs, lookup

DEFAULT_SERVER = "nats://127.0.0.1:4222"
NATS_SCHEMES = ("nats", "tls", "ws", "wss")
MACHINE_ID_FILES = ("/etc/machine-id", "/var/lib/dbus/machine-id")
_IFNAME_RE = re.compile(r"^[^\s/:]{1,15}$")
_HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_][A-Za-z0-9_-]{0,62}(\.[A-Za-z0-9_-]{1,63})*$")
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")


@dataclass(frozen=True, slots=True)
class Config:
    servers: tuple[str, ...] = (DEFAULT_SERVER,)
    network: str = "0"
    dev: str = "vnats0"
    mac: bytes = b""
    mtu: int = 1500
    addresses: tuple[str, ...] = ()
    up: bool = True
    netns: str | None = None
    subject_prefix: str = "vlan"
    compat: bool = False
    offload: bool = True
    bridge: str | None = None
    mac_ageing: float = 300.0
    max_macs: int = 4096
    storm_pps: float = 1000.0
    log_level: str = "info"
    log_format: str = "text"
    auth: NatsAuth = NatsAuth()
    seal: SealKeys | None = None
    run_as: RunAs | None = None
    metrics_listen: tuple[str, int] | None = None

    @property
    def mac_text(self) -> str:
        return format_mac(self.mac)


def check_range(
    what: str, value: float, low: float, high: float | None = None, unit: str = ""
) -> float:
    """The one check for numeric options: finite and within [low, high]."""
    ok = isinstance(value, (int, float)) and math.isfinite(value) and value >= low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        bounds = f"{low:g}-{high:g}" if high is not None else f">= {low:g}"
        raise ConfigError(f"bad {what} {value}: must be {bounds}{' ' + unit if unit else ''}")
    return value


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


def build(
    *,
    servers: list[str] | tuple[str, ...] | None = None,
    network: str = "0",
    dev: str | None = None,
    mac: str | None = None,
    mtu: int = 1500,
    addresses: list[str] | tuple[str, ...] | None = None,
    up: bool = True,
    netns: str | None = None,
    subject_prefix: str = "vlan",
    compat: bool = False,
    offload: bool = True,
    bridge: str | None = None,
    mac_ageing: float = 300.0,
    max_macs: int = 4096,
    storm_pps: float = 1000.0,
    log_level: str = "info",
    log_format: str = "text",
    user: str | None = None,
    password_file: str | None = None,
    token_file: str | None = None,
    nkey: str | None = None,
    creds: str | None = None,
    tls_ca: str | None = None,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    tls_first: bool = False,
    key_file: str | None = None,
    accept_key_file: str | None = None,
    run_as: str | None = None,
    metrics_listen: str | None = None,
) -> Config:
    """Validate raw option values and build a Config.  Raises ConfigError."""
    try:
        network = validate_network(str(network))
        subject_prefix = validate_prefix(subject_prefix)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if compat and not network.isdigit():
        raise ConfigError("--compat needs a numeric --network (the Go original's VLAN ID)")
    urls = tuple(check_server_url(u) for u in (servers or [DEFAULT_SERVER]))
    dev = dev or f"vnats{network}"
    if not _IFNAME_RE.match(dev):
        raise ConfigError(
            f"bad --dev {dev!r}: at most 15 characters, no spaces, '/' or ':'"
            + (" (a long network name needs --dev)" if dev.startswith("vnats") else "")
        )
    check_range("--mtu", mtu, 68, 65535)
    addrs = []
    for a in addresses or ():
        try:
            addrs.append(str(ipaddress.ip_interface(a)))
        except ValueError:
            raise ConfigError(f"bad --address {a!r}: expected CIDR such as 198.18.0.1/24") from None
        if "/" not in a:
            raise ConfigError(f"bad --address {a!r}: give a prefix length, e.g. {a}/24")
    if netns is not None and (not netns or "/" in netns or netns in (".", "..")):
        raise ConfigError(f"bad --netns {netns!r}: give the name of an existing namespace")
    if bridge is not None:
        if not _IFNAME_RE.match(bridge):
            raise ConfigError(f"bad --bridge {bridge!r}: give the name of an existing bridge")
        if compat:
            raise ConfigError("--bridge is not available with --compat")
    check_range("--mac-ageing", mac_ageing, 1, 86400, "seconds")
    check_range("--max-macs", max_macs, 1, 1_000_000)
    check_range("--storm-pps", storm_pps, 0, unit="(0: off)")
    if log_level not in LOG_LEVELS:
        raise ConfigError(f"bad --log-level {log_level!r}: one of {', '.join(LOG_LEVELS)}")
    if log_format not in LOG_FORMATS:
        raise ConfigError(f"bad --log-format {log_format!r}: one of {', '.join(LOG_FORMATS)}")
    seal = None
    if key_file is not None:
        if compat:
            raise ConfigError("--key-file is not available with --compat (the Go original)")
        seal = SealKeys(key_file, accept_key_file)
        seal.load()  # errors now, before any device exists
    elif accept_key_file is not None:
        raise ConfigError("--accept-key-file needs --key-file (the key that seals)")
    return Config(
        servers=urls,
        network=network,
        dev=dev,
        mac=resolve_mac(mac, network, dev, netns),
        mtu=mtu,
        addresses=tuple(addrs),
        up=up,
        netns=netns,
        subject_prefix=subject_prefix,
        compat=compat,
        offload=offload and not compat,  # the Go original knows no virtio header
        bridge=bridge,
        mac_ageing=float(mac_ageing),
        max_macs=max_macs,
        storm_pps=float(storm_pps),
        log_level=log_level,
        log_format=log_format,
        auth=build_auth(
            user=user,
            password_file=password_file,
            token_file=token_file,
            nkey=nkey,
            creds=creds,
            tls_ca=tls_ca,
            tls_cert=tls_cert,
            tls_key=tls_key,
            tls_first=tls_first,
        ),
        seal=seal,
        run_as=lookup(run_as) if run_as is not None else None,
        metrics_listen=parse_listen(metrics_listen, "--metrics-listen") if metrics_listen else None,
    )
