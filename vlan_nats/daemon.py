"""The daemon: set-up -> run -> signals -> teardown.

Set-up opens a non-persistent TAP (it vanishes with our fd, so even a
SIGKILL leaves no device), sets MAC and MTU, moves it into ``--netns`` if
asked, adds addresses, brings it up, connects to NATS (retrying forever)
and subscribes; then it logs one ``ready`` line and tells systemd.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import json
import logging
import os
import signal
import socket
import time
from pathlib import Path

from . import __version__, privdrop, sdnotify
from .aio import statussock
from .aio.ctlplane import ControlResponder, gather_peers, new_node_id
from .aio.dupmac import DuplicateMac
from .aio.natslink import NatsLink
from .aio.tunnel import Tunnel
from .auth import connect_options
from .config import Config
from .control import netns
from .control.link import LinkControl, LinkState
from .control.nlthread import NetlinkThread
from .control.watch import AddressEvent, LinkEvent, LinkWatcher, McastList
from .core.control import NodeInfo
from .core.counters import Counters
from .core.forwarding import Forwarder
from .core.mac import format_mac
from .core.seal import SESSION_LEN, Opener, Sealer
from .core.subjects import SubjectScheme
from .core.switching import MacTable, TokenBucket
from .crypto import aes_gcm
from .errors import ConfigError, LinkError, NetnsError, PrivilegeError, TapError
from .fastpath import Tap
from .keys import SealKeys, describe
from .ratelog import RateLimitedLog

log = logging.getLogger(__name__)

CAP_NET_ADMIN = 12
MCAST_POLL_INTERVAL = 1.0


def has_net_admin() -> bool:
    if os.geteuid() == 0:
        return True
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> CAP_NET_ADMIN & 1)
    except OSError:
        pass
    return False


def check_environment(cfg: Config) -> None:
    """The checks that give a clear message before anything is created."""
    if not has_net_admin():
        raise PrivilegeError(
            "vlan-nats up must run as root (it needs CAP_NET_ADMIN for its TAP device)"
        )
    if not os.path.exists("/dev/net/tun"):
        raise TapError(2, "/dev/net/tun is missing: load the tun module (modprobe tun)")
    if cfg.netns is not None:
        os.close(netns.open_fd(cfg.netns))  # NetnsError when missing


def _inode(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


class Daemon:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.counters = Counters()
        self.scheme = SubjectScheme(cfg.subject_prefix, cfg.network, cfg.compat)
        self.forwarder = Forwarder(
            cfg.mac, MacTable(cfg.mac_ageing, cfg.max_macs), bridge=cfg.bridge is not None
        )
        self._moved_log = RateLimitedLog(log, interval=10.0)
        self._full_log = RateLimitedLog(log, interval=60.0)
        self._resync: asyncio.Task[None] | None = None
        self._resync_wanted = False
        self.node_id = new_node_id()
        self.started = time.monotonic()
        self.offloads: tuple[str, ...] = ()
        self.link: NatsLink | None = None
        self.groups: frozenset[bytes] = frozenset()
        self.state: LinkState | None = None
        self._stop = asyncio.Event()
        self._error: BaseException | None = None
        self._key = b""
        self._accepting: list[str] = []
        self.addresses: tuple[str, ...] = ()
        self.dup = DuplicateMac(lambda: self.forwarder.mac, self.node_id, self._lookup_peers)
        self.foreign_master: str | None = None  # a bridge we were enslaved to without --bridge
        self._netns_id: tuple[int, int] | None = None

    def stop(self) -> None:
        self._stop.set()

    def log_counters(self) -> None:
        """SIGUSR1: one line ``counters {json}`` with every counter."""
        log.info("counters %s", json.dumps(self.counters.snapshot(), sort_keys=True))

    def fail(self, error: BaseException) -> None:
        self._error = error
        self._stop.set()

    async def run(self) -> None:
        """Run until stop(); raises a VlanNatsError when set-up fails."""
        cfg = self.cfg
        check_environment(cfg)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop)
        loop.add_signal_handler(signal.SIGUSR1, self.log_counters)
        loop.add_signal_handler(signal.SIGHUP, self.reload_keys)
        async with contextlib.AsyncExitStack() as stack:
            nl = NetlinkThread()
            stack.callback(nl.close)
            here = await LinkControl.open(nl, None)
            stack.push_async_callback(here.close)
            if await here.lookup(cfg.dev) is not None:
                raise LinkError(17, f"device {cfg.dev} already exists")
            ctl = here
            if cfg.netns is not None:
                ctl = await LinkControl.open(nl, cfg.netns)
                stack.push_async_callback(ctl.close)
                if await ctl.lookup(cfg.dev) is not None:
                    raise LinkError(
                        17, f"device {cfg.dev} already exists in namespace {cfg.netns!r}"
                    )

            tap = Tap.open(cfg.dev, vnet_hdr=True)
            stack.callback(tap.close)
            offloads = self.offloads = tap.negotiate_offloads() if cfg.offload else ()
            log.info(
                "offloads negotiated=%s",
                ",".join(o.lower() for o in offloads) or ("none" if cfg.offload else "off"),
            )
            index = await here.lookup(tap.name)
            if index is None:
                raise LinkError(19, f"device {tap.name} vanished after creation")
            # MAC and MTU survive a namespace move; addresses and "up" do not.
            await here.set(index, mac=cfg.mac, mtu=cfg.mtu)
            if cfg.netns is not None:
                await here.move_to(index, cfg.netns)
                index = await ctl.lookup(tap.name)
                if index is None:
                    raise LinkError(19, f"device {tap.name} vanished moving to {cfg.netns!r}")
            if cfg.bridge is not None:
                bridge = await ctl.lookup(cfg.bridge)
                if bridge is None:
                    where = f" in namespace {cfg.netns!r}" if cfg.netns else ""
                    raise LinkError(19, f"bridge {cfg.bridge} does not exist{where}")
                await ctl.set(index, master=bridge)
            for cidr in cfg.addresses:
                await ctl.add_address(index, cidr)
            if cfg.up:
                await ctl.set(index, up=True)
            self.state = await ctl.state(index)
            self.addresses = await ctl.addresses(index)
            if cfg.netns is not None:
                self._netns_id = _inode(netns.path_of(cfg.netns))

            mcast = McastList(cfg.netns)
            stack.callback(mcast.close)
            self.groups = mcast.read(index)
            watcher = await stack.enter_async_context(LinkWatcher(nl, cfg.netns, index))

            name = f"vlan-nats {socket.gethostname()} {cfg.dev}"
            sock = statussock.socket_path(cfg.dev, cfg.netns)
            try:
                server = await statussock.serve(sock, self.status)
            except OSError as e:
                log.warning("no status socket path=%s error=%s", sock, e.strerror or e)
            else:
                # After --run-as the directory is no longer ours to change:
                # then the next start removes the socket.
                stack.callback(lambda: _unlink_quietly(sock))
                stack.callback(server.close)
                if cfg.run_as is not None:
                    os.chown(sock, cfg.run_as.uid, cfg.run_as.gid)
            if cfg.metrics_listen is not None:
                from .aio import metrics  # prometheus-client: only when asked for

                host, port = cfg.metrics_listen
                try:
                    msrv = await metrics.serve(host, port, self.status)
                except OSError as e:
                    raise ConfigError(
                        f"--metrics-listen {host}:{port}: {e.strerror or e}"
                    ) from None
                stack.callback(msrv.close)
                log.info("metrics url=http://%s:%d/metrics", host, port)
            for path in cfg.auth.loose_files:
                log.warning("secret readable by others path=%s (chmod 600 it)", path)
            options = connect_options(cfg.auth)
            link = NatsLink(
                cfg.servers,
                name,
                self.counters,
                options=options,
                inbox_prefix=f"_INBOX.{cfg.mac.hex()}",
            )
            stack.push_async_callback(link.close)
            self.link = link
            self.tunnel = Tunnel(
                tap,
                link,
                self.scheme,
                self.forwarder,
                self.counters,
                cfg.mtu,
                storm=TokenBucket(cfg.storm_pps),
                on_events=self._on_switch_events,
                on_new_local=self._subscribe_new_local,
                on_dup_mac=self.dup.seen,
            )
            link.on_msg = self.tunnel.on_msg
            if cfg.seal is not None:
                self._load_keys(cfg.seal)
            self.tunnel.start()
            stack.push_async_callback(self.tunnel.stop)

            if cfg.run_as is not None:
                privdrop.drop(cfg.run_as)
                log.info("dropped root user=%s", privdrop.describe(cfg.run_as))
            tasks = [
                loop.create_task(self._connect(link, index), name="nats-connect"),
                loop.create_task(self._watch(watcher, mcast, ctl, index), name="link-watch"),
                loop.create_task(self._poll_mcast(mcast, index), name="mcast-poll"),
                loop.create_task(self._age_macs(), name="mac-ageing"),
            ]
            for t in tasks:
                t.add_done_callback(self._task_done)
            self.tunnel.failed.add_done_callback(lambda f: self._tap_failed(f.result()))
            try:
                await self._stop.wait()
            finally:
                sdnotify.notify("STOPPING=1")
                log.info("stopping dev=%s", cfg.dev)
                self.log_counters()
                if self._resync is not None:
                    tasks.append(self._resync)
                for t in tasks:
                    t.cancel()
                self.dup.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        if self._error is not None:
            raise self._error

    def _load_keys(self, seal: SealKeys) -> None:
        """Read the key files and seal/open with them (ConfigError)."""
        key, extra, loose = seal.load()
        for path in loose:
            log.warning("secret readable by others path=%s (chmod 600 it)", path)
        t = self.tunnel
        if t.sealer is None or self._key != key:
            # a new session
            t.sealer = Sealer(key, os.urandom(SESSION_LEN), time.time, aead=aes_gcm)
        self._key = key
        keys = [key] if extra is None else [key, extra]
        self._accepting = [describe(k) for k in keys]
        if t.opener is None:
            t.opener = Opener(keys, aead=aes_gcm)
        else:
            t.opener.set_keys(keys)
        log.info(
            "sealing key=%s accepting=%s",
            describe(key),
            ",".join(describe(k) for k in keys),
        )

    def reload_keys(self) -> None:
        """SIGHUP: re-read the key files; on error keep the keys in use."""
        if self.cfg.seal is None or not hasattr(self, "tunnel"):
            log.info("SIGHUP: nothing to reload (no --key-file)")
            return
        try:
            self._load_keys(self.cfg.seal)
        except ConfigError as e:
            log.error("key reload failed, keeping the keys in use: %s", e)

    @property
    def mode(self) -> str:
        cfg = self.cfg
        return "compat" if cfg.compat else f"bridge:{cfg.bridge}" if cfg.bridge else "native"

    def node_info(self) -> NodeInfo:
        """What this node answers to ``peers``."""
        fwd = self.forwarder
        learned = [m for m in fwd.table.local if m != fwd.mac][:256] if fwd.bridge else []
        c = self.counters
        return NodeInfo(
            node_id=self.node_id,
            hostname=socket.gethostname(),
            dev=self.cfg.dev,
            macs=[format_mac(fwd.mac)] + [format_mac(m) for m in learned],
            network=self.cfg.network,
            mode=self.mode,
            version=__version__,
            uptime_s=round(time.monotonic() - self.started, 1),
            server=self.link.server if self.link else "-",
            netns=self.cfg.netns,
            addresses=list(self.addresses),
            counters={
                "tap_rx_frames": c.tap_rx_frames,
                "tap_tx_frames": c.tap_tx_frames,
                "drops": sum(c.drops),
                "nats_reconnects": c.nats_reconnects,
            },
        )

    def status(self) -> dict[str, object]:
        """The local status document (``vlan-nats status``)."""
        cfg, fwd, st, link = self.cfg, self.forwarder, self.state, self.link
        return {
            "node_id": self.node_id,
            "dev": cfg.dev,
            "netns": cfg.netns,
            "network": cfg.network,
            "mode": self.mode,
            "mac": format_mac(fwd.mac),
            "mtu": st.mtu if st else cfg.mtu,
            "link_up": st.up if st else None,
            "server": link.server if link else "-",
            "connected": bool(link and link.is_connected),
            "nats_error": link.last_error if link else None,
            "duplicate_mac": self.dup.status(),
            "foreign_bridge": self.foreign_master,
            "addresses": list(self.addresses),
            "subjects": len(link.subjects) if link else 0,
            "multicast_groups": sorted(format_mac(g) for g in self.groups),
            "learned_macs": len(fwd.table.local) - 1 if fwd.bridge else 0,
            "remote_macs": self._remote_macs(),
            "offloads": [o.lower() for o in self.offloads],
            "sealing": {
                "key": describe(self._key),
                "accepting": self._accepting,
                "sessions": self.tunnel.opener.sessions if self.tunnel.opener else 0,
            }
            if self._key
            else None,
            "uptime_s": round(time.monotonic() - self.started, 1),
            "version": __version__,
            "counters": self.counters.snapshot(),
        }

    def _remote_macs(self) -> int:
        """MACs heard from the network within the ageing time (our peers)."""
        t = self.forwarder.table
        now = time.monotonic()
        return sum(1 for seen in t.remote.values() if now - seen <= t.ageing)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        """A background task must not die silently: its error stops the daemon."""
        if not task.cancelled() and task.exception() is not None:
            log.error("task failed task=%s error=%r", task.get_name(), task.exception())
            self.fail(task.exception())  # type: ignore[arg-type]

    async def _sync_subjects(self) -> None:
        fwd = self.forwarder
        bridged = frozenset(fwd.table.local) if fwd.bridge else None
        assert self.link is not None
        await self.link.set_subjects(self.scheme.subscriptions(fwd.mac, self.groups, bridged))

    async def _subscribe_new_local(self, mac: bytes) -> None:
        """Bridge mode: a MAC just learned behind the bridge gets its
        subscription before its first frame is published."""
        if self.link is not None:
            await self.link.add_subject(self.scheme.unicast(mac))

    def _on_switch_events(self) -> None:
        """Called by the tunnel when learning changed something (per batch)."""
        events = self.forwarder.events
        resync = False
        for kind, mac in events:
            if kind == "full":
                self.counters.macs_over_cap += 1
                self._full_log.warning(
                    "mac table full max_macs=%d mac=%s (reached by flooding only)",
                    self.cfg.max_macs,
                    format_mac(mac),
                )
                continue
            resync = True
            if kind == "moved_local":
                self._moved_log.warning(
                    "MAC moved mac=%s from=network to=bridge %s", format_mac(mac), self.cfg.bridge
                )
            elif kind == "moved_remote":
                self._moved_log.warning(
                    "MAC moved mac=%s from=bridge %s to=network", format_mac(mac), self.cfg.bridge
                )
        events.clear()
        if resync:
            self._resync_wanted = True
            if self._resync is None or self._resync.done():
                self._resync = asyncio.get_running_loop().create_task(self._resync_loop())

    async def _resync_loop(self) -> None:
        # Events that arrive while a sync runs are picked up by the next turn.
        while self._resync_wanted:
            self._resync_wanted = False
            await self._sync_subjects()

    async def _age_macs(self) -> None:
        fwd = self.forwarder
        interval = max(0.5, min(fwd.table.ageing / 4, 10.0))
        while True:
            await asyncio.sleep(interval)
            gone = fwd.table.expire(time.monotonic())
            if gone and fwd.bridge:
                log.debug("macs aged out macs=%s", ",".join(format_mac(m) for m in gone))
                await self._sync_subjects()

    async def _lookup_peers(self, timeout: float) -> list[NodeInfo]:
        link = self.link
        if link is None or not link.is_connected or link.inbox_refused:
            return []
        return await gather_peers(link.nc, self.scheme, timeout)

    async def _connect(self, link: NatsLink, index: int) -> None:
        log.info("connecting servers=%s", ",".join(self.cfg.servers))
        await link.connect()
        # Before we subscribe: does another node already use our MAC?
        await self.dup.check_at_start()
        await self._sync_subjects()
        await ControlResponder(self.scheme, self.node_id, self.node_info).start(link.nc)
        cfg = self.cfg
        log.info(
            "ready dev=%s mac=%s network=%s server=%s netns=%s mtu=%d mode=%s auth=%s version=%s",
            cfg.dev,
            format_mac(self.forwarder.mac),
            cfg.network,
            link.server,
            cfg.netns or "-",
            self.state.mtu if self.state else cfg.mtu,
            self.mode,
            cfg.auth.describe(),
            __version__,
        )
        sdnotify.notify("READY=1")
        # Everything built during set-up (pyroute2, nats-py, our tables) lives
        # as long as the daemon: take it out of the collector's sight, so the
        # full collections that per-frame garbage triggers stay short.
        gc.collect()
        gc.freeze()

    def _gone(self) -> LinkError | NetnsError:
        """Why the TAP went away: its namespace was deleted, or it was."""
        ns = self.cfg.netns
        if ns is not None and _inode(netns.path_of(ns)) != self._netns_id:
            return NetnsError(2, f"namespace {ns} was deleted")
        return LinkError(19, f"device {self.cfg.dev} was deleted")

    def _tap_failed(self, error: BaseException) -> None:
        # A deleted device reads as EBADFD/ENODEV; that is news, not a bug.
        if isinstance(error, TapError) and error.errno in (
            errno.EBADFD,
            errno.EBADF,
            errno.ENODEV,
            errno.EIO,
        ):
            error = self._gone()
        self.fail(error)

    async def _check_bridge_port(self, ctl: LinkControl, st: LinkState) -> None:
        """``ip link set DEV master BR`` without --bridge: hosts behind BR
        would be unreachable with no word said.  Warn, and show it."""
        if self.cfg.bridge is not None:
            return
        if st.master is None:
            if self.foreign_master is not None:
                log.info("device %s left bridge %s", st.name, self.foreign_master)
            self.foreign_master = None
            return
        name = await ctl.name_of(st.master)
        if name != self.foreign_master:
            self.foreign_master = name
            log.warning(
                "device %s was made a port of bridge %s, but this daemon runs without "
                "--bridge: hosts behind %s cannot be reached; restart with --bridge %s",
                st.name,
                name,
                name,
                name,
            )

    async def _watch(
        self, watcher: LinkWatcher, mcast: McastList, ctl: LinkControl, index: int
    ) -> None:
        async for event in watcher.events():
            if isinstance(event, AddressEvent):
                self.addresses = await ctl.addresses(index)
                await self._refresh_groups(mcast, index)
                continue
            assert isinstance(event, LinkEvent)
            st = event.state
            if st is None:
                self.fail(self._gone())
                return
            await self._check_bridge_port(ctl, st)
            old = self.state
            self.state = st
            if st.mac and st.mac != self.forwarder.mac:
                log.info(
                    "mac changed old=%s new=%s", format_mac(self.forwarder.mac), format_mac(st.mac)
                )
                self.forwarder.mac = st.mac
                await self._sync_subjects()
            if old is None or st.mtu != old.mtu:
                self.tunnel.set_mtu(st.mtu)
                if old is not None:
                    log.info("mtu changed old=%d new=%d", old.mtu, st.mtu)
            if old is not None and st.up != old.up:
                log.info("link %s dev=%s", "up" if st.up else "down", st.name)
            await self._refresh_groups(mcast, index)

    async def _refresh_groups(self, mcast: McastList, index: int) -> None:
        groups = mcast.read(index)
        if groups != self.groups:
            log.debug("multicast groups=%s", sorted(format_mac(g) for g in groups))
            self.groups = groups
            await self._sync_subjects()

    async def _poll_mcast(self, mcast: McastList, index: int) -> None:
        while True:
            await asyncio.sleep(MCAST_POLL_INTERVAL)
            # `ip netns del` of our namespace: our own sockets keep it alive,
            # so the device would live on where nobody can reach it.
            ns = self.cfg.netns
            if ns is not None and _inode(netns.path_of(ns)) != self._netns_id:
                self.fail(self._gone())
                return
            await self._refresh_groups(mcast, index)
