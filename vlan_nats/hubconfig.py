"""The hub's configuration: its options validated (build_hub), the
nats-server configuration generated from them (server_config), and how the
hub's own clients reach that server (local_url, client_options).  hub.py
runs the server."""

from __future__ import annotations

import ipaddress
import json
import os
import socket
from dataclasses import dataclass, field
from typing import Any

from . import options
from .auth import build_auth
from .config import check_numbers, check_server_url, parse_listen
from .core.ipam import Pool
from .core.subjects import validate_network, validate_prefix
from .errors import ConfigError
from .options import DEFAULT_LISTEN, LOG_LEVELS, LOOPBACK_LISTEN


@dataclass(frozen=True, slots=True)
class HubConfig:
    """Defaults live in options.py only: build_hub() fills every field."""

    listen: str
    monitor: str | None
    token: str | None = field(repr=False)
    user: str | None
    password: str | None = field(repr=False)
    tls_cert: str | None
    tls_key: str | None
    tls_ca: str | None
    tls_first: bool
    cluster_listen: str | None
    cluster_name: str
    routes: tuple[str, ...]
    server_name: str
    log_level: str
    store: str | None  # JetStream's store_dir (None: JetStream off)
    # (network, pool): address services run here; None: the definition's pool
    ipam: tuple[tuple[str, Pool | None], ...]
    lease: float
    replicas: int
    subject_prefix: str
    metrics_listen: tuple[str, int] | None  # Prometheus: the server and the address services

    @property
    def auth_text(self) -> str:
        """How clients authenticate, for the ready line and check-config."""
        how = "token" if self.token else f"user:{self.user}" if self.user else "none"
        return f"{how}+client-certificates" if self.tls_ca else how


def _host_port(value: str, what: str, option: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(
            f"bad {what} {value!r}: expected HOST:PORT, e.g. 0.0.0.0:4222", option=option
        )
    return f"{host or '0.0.0.0'}:{port}"


def _readable(path: str | None, what: str, option: str) -> str | None:
    if path is not None and not os.access(path, os.R_OK):
        raise ConfigError(f"cannot read {what} {path}", option=option)
    return path


def build_hub(*, environ: dict[str, str] | None = None, **given: Any) -> HubConfig:
    """Validate the hub's options (options.py names; None or absent: the
    default).  Raises ConfigError naming the option."""
    v = options.defaults("hub")
    unknown = set(given) - set(v)
    if unknown:
        raise TypeError(f"build_hub() got unknown options {sorted(unknown)}")
    v.update({k: x for k, x in given.items() if x is not None})
    # The same rules as a client's: files or the environment, one method.
    creds = build_auth(
        user=v["user"],
        password_file=v["password_file"],
        token_file=v["token_file"],
        environ=environ,
    )
    _check_pairs(v)
    tls_cert, tls_key, tls_ca, monitor = v["tls_cert"], v["tls_key"], v["tls_ca"], v["monitor"]
    if monitor in ("off", "none", ""):
        monitor = None
    cluster = v["cluster_listen"]
    store = v["store"] if v["store"] not in ("off", "none", "") else None
    services = _services(v["ipam"], store, tls_ca)
    try:
        prefix = validate_prefix(v["subject_prefix"])
    except ValueError as e:
        raise ConfigError(str(e), option="subject_prefix") from None
    check_numbers(v, "hub")
    authenticated = bool(creds.token or creds.user or tls_ca)
    return HubConfig(
        listen=_listen(v["listen"], authenticated, v["allow_anonymous"]),
        monitor=_host_port(monitor, "--monitor", "monitor") if monitor else None,
        token=creds.token,
        user=creds.user,
        password=creds.password,
        tls_cert=_readable(tls_cert, "TLS certificate", "tls_cert"),
        tls_key=_readable(tls_key, "TLS key", "tls_key"),
        tls_ca=_readable(tls_ca, "TLS CA file", "tls_ca"),
        tls_first=v["tls_first"],
        cluster_listen=_host_port(cluster, "--cluster-listen", "cluster_listen")
        if cluster
        else None,
        cluster_name=v["cluster_name"],
        routes=tuple(_route(r) for r in v["routes"] or ()),
        server_name=v["server_name"] or f"{socket.gethostname()}-hub",
        log_level=v["log_level"],
        store=store,
        ipam=services,
        lease=v["lease"],
        replicas=v["replicas"],
        subject_prefix=prefix,
        metrics_listen=parse_listen(v["metrics_listen"], "--metrics-listen")
        if v["metrics_listen"]
        else None,
    )


def _check_pairs(v: dict[str, Any]) -> None:
    """Options that need another one, and the log level."""
    if bool(v["tls_cert"]) != bool(v["tls_key"]):
        raise ConfigError("--tls-cert and --tls-key go together", option="tls_key")
    if (v["tls_ca"] or v["tls_first"]) and not v["tls_cert"]:
        raise ConfigError(
            "--tls-ca and --tls-first need the server's --tls-cert/--tls-key", option="tls_cert"
        )
    if v["routes"] and not v["cluster_listen"]:
        raise ConfigError(
            "--route needs --cluster-listen (this hub's own route port)", option="routes"
        )
    if v["log_level"] not in LOG_LEVELS:
        raise ConfigError(
            f"bad --log-level {v['log_level']!r}: one of {', '.join(LOG_LEVELS)}",
            option="log_level",
        )


def _services(given: list[str] | None, store: str | None,
              tls_ca: str | None) -> tuple[tuple[str, Pool | None], ...]:  # fmt: skip
    """The address services of --ipam, and what they need."""
    services = tuple(_ipam(x) for x in given or ())
    if services and store is None:
        raise ConfigError(
            "--ipam needs JetStream: give --store DIR (not off); the leases live there",
            option="store",
        )
    if services and tls_ca:
        raise ConfigError(
            "--ipam cannot connect to a hub that requires client certificates (--tls-ca): "
            "run vlan-nats ipam with a client certificate instead",
            option="ipam",
        )
    return services


def _listen(given: str | None, authenticated: bool, anonymous: bool) -> str:
    """The client listen address.  Without authentication the server is
    for this host only: the default becomes loopback, and another address
    needs --allow-anonymous (an open server lets anyone join the LANs)."""
    if given is None:
        return DEFAULT_LISTEN if authenticated or anonymous else LOOPBACK_LISTEN
    listen = _host_port(given, "--listen", "listen")
    host = listen.rpartition(":")[0].strip("[]")
    if authenticated or anonymous or is_loopback(host):
        return listen
    raise ConfigError(
        f"--listen {given} without authentication lets anyone who reaches it join every "
        "network: give --token-file FILE (nodes: the same --token-file) or --user with "
        "--password-file; or --allow-anonymous to serve an open server",
        option="listen",
    )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _ipam(text: str) -> tuple[str, Pool | None]:
    """``NETWORK=CIDR`` of ``--ipam``, or ``NETWORK``: the pool of the
    network's definition (vlan-nats network set NETWORK pool=CIDR)."""
    network, sep, cidr = text.partition("=")
    try:
        if not sep:
            return validate_network(network.strip()), None
        return validate_network(network.strip()), Pool.parse(cidr.strip())
    except ValueError as e:  # PoolError is one
        raise ConfigError(f"bad --ipam {text!r}: {e}", option="ipam") from None


def _route(url: str) -> str:
    try:
        return check_server_url(url)
    except ConfigError as e:
        raise ConfigError(str(e), option="routes") from None


def server_config(cfg: HubConfig, redact: bool = False) -> str:
    """nats-server configuration text (strings JSON-quoted, which it accepts)."""

    def q(v: Any) -> str:
        return json.dumps(v)

    def secret(v: str) -> str:
        return q("<redacted>") if redact else q(v)

    lines = [
        "# generated by vlan-nats hub; do not edit",
        f"server_name: {q(cfg.server_name)}",
        f"listen: {q(cfg.listen)}",
        # A 64 KiB GSO frame plus headers must fit; the default 1 MB does.
        "max_payload: 1048576",
        # Pings every 2 s: clients notice a dead hub quickly too.
        'ping_interval: "2s"',
        "ping_max: 3",
    ]
    if cfg.monitor:
        lines.append(f"http: {q(cfg.monitor)}")
    if cfg.token:
        lines.append(f"authorization {{ token: {secret(cfg.token)} }}")
    elif cfg.user and cfg.password:
        lines.append(f"authorization {{ user: {q(cfg.user)}, password: {secret(cfg.password)} }}")
    if cfg.tls_cert:
        tls = [f"cert_file: {q(cfg.tls_cert)}", f"key_file: {q(cfg.tls_key)}"]
        if cfg.tls_ca:
            tls += [f"ca_file: {q(cfg.tls_ca)}", "verify: true"]
        if cfg.tls_first:
            tls.append("handshake_first: true")
        lines.append("tls { " + ", ".join(tls) + " }")
    if cfg.cluster_listen:
        cl = [f"name: {q(cfg.cluster_name)}", f"listen: {q(cfg.cluster_listen)}"]
        if cfg.routes:
            cl.append("routes: [" + ", ".join(q(r) for r in cfg.routes) + "]")
        lines.append("cluster { " + ", ".join(cl) + " }")
    if cfg.store:
        lines.append(f"jetstream {{ store_dir: {q(cfg.store)} }}")
    if cfg.log_level == "debug":
        lines.append("debug: true")
    return "\n".join(lines) + "\n"


def local_url(cfg: HubConfig) -> str:
    """Where the hub's own clients (its address services) reach its server."""
    host, _, port = cfg.listen.rpartition(":")
    host = {"0.0.0.0": "127.0.0.1", "[::]": "[::1]", "": "127.0.0.1"}.get(host, host)
    return f"{'tls' if cfg.tls_cert else 'nats'}://{host}:{port}"


def client_options(cfg: HubConfig) -> dict[str, Any]:
    """nats-py options for the hub's own clients: its credentials; with TLS,
    no verification (our own child process, and its certificate names the
    public address, not the one we dial)."""
    opts: dict[str, Any] = {}
    if cfg.token:
        opts["token"] = cfg.token
    elif cfg.user:
        opts.update(user=cfg.user, password=cfg.password)
    if cfg.tls_cert:
        import ssl

        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        opts["tls"] = ctx
        opts["tls_handshake_first"] = cfg.tls_first
    return opts
