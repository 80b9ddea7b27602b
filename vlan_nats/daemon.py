"""The daemon: set-up -> run -> signals -> teardown.

Set-up brings the device up (control/bringup.py: a non-persistent TAP that
vanishes with our fd, so even a SIGKILL leaves no device), serves the
status socket (and metrics), connects to NATS (retrying forever), starts
the tunnel, and subscribes; then it logs one ``ready`` line and tells
systemd.  The work is done by the parts it wires together:

    bring_up      control/bringup.py   the TAP, MAC, MTU, netns, bridge, addresses
    Tunnel        aio/tunnel.py        frames TAP <-> NATS: the python datapath, or
    CTunnel       aio/ctunnel.py       the C one (--dataplane, aio/datapath.py)
    Subscriptions aio/switchctl.py     what we subscribe to; SwitchEvents: learning
    LinkFollower  aio/linkfollow.py    `ip` changes, a deleted device or namespace
    DuplicateMac  aio/dupmac.py        another node with our MAC
    KeyRing       keyring.py           sealing keys, SIGHUP reload
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
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from . import __version__, privdrop, report, sdnotify
from .aio import statussock
from .aio.addrclient import AddressClient
from .aio.alone import Loneliness
from .aio.ctlplane import ControlResponder, gather_peers, new_node_id, notice_subject
from .aio.datapath import Datapath, SubjectSink
from .aio.dupaddr import DuplicateAddress
from .aio.dupmac import LOOKUP_TIMEOUT, DuplicateMac
from .aio.linkfollow import LinkFollower
from .aio.mtucheck import MtuWatch
from .aio.natslink import NatsLink
from .aio.switchctl import Subscriptions, SwitchEvents
from .aio.tunnel import Tunnel
from .auth import SecretFile, connect_options, data_connection_secrets, read_secret
from .cdatapath import ConnOptions, choose
from .config import Config
from .control import netns
from .control.bringup import Device, bring_up
from .control.nlthread import NetlinkThread
from .control.watch import LinkWatcher, McastList
from .core.addrclaim import Claim
from .core.arp import RepeatMemory
from .core.control import NodeInfo
from .core.counters import Counters
from .core.forwarding import Forwarder
from .core.mac import format_mac
from .core.settings import Change
from .core.status import Status
from .core.subjects import SubjectScheme
from .core.switching import MacTable, TokenBucket
from .errors import ConfigError, PrivilegeError, TapError
from .keyring import KeyRing
from .reload import ConfigReload, Read

if TYPE_CHECKING:
    from .aio.ctunnel import CTunnel

log = logging.getLogger(__name__)

CAP_NET_ADMIN = 12  # include/uapi/linux/capability.h


def _log_failure(what: str) -> Callable[[asyncio.Task[None]], None]:
    def done(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("config reload: %s not applied: %s", what, task.exception())

    return done


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
        raise TapError(errno.ENOENT, "/dev/net/tun is missing: load the tun module (modprobe tun)")
    if cfg.netns is not None:
        os.close(netns.open_fd(cfg.netns))  # NetnsError when missing


class Daemon:
    def __init__(
        self, cfg: Config, reload: Read | None = None, explicit_mac: bool = False
    ) -> None:
        self.cfg = cfg
        # SIGHUP: the config file read again (reload.py)
        self.config_reload = ConfigReload(cfg, reload, explicit_mac, self._apply)
        self.counters = Counters()
        self.scheme = SubjectScheme(cfg.subject_prefix, cfg.network, cfg.compat)
        self.forwarder = Forwarder(
            cfg.mac, MacTable(cfg.mac_ageing, cfg.max_macs), bridge=cfg.bridge is not None
        )
        self.node_id = new_node_id()
        # The namespace the TAP lives in: --netns, else the one we run in
        # (`ip netns exec NAME`); None for the host's own.
        self.where = cfg.netns or netns.current() or None
        self.started = time.monotonic()
        self.dup = DuplicateMac(lambda: self.forwarder.mac, self.node_id, self._lookup_peers)
        self.dupaddr = DuplicateAddress(self.scheme, self._claim)
        self.mtuw = MtuWatch(self.node_info, self._mtu, self._lookup_peers, self._notify)
        self.alone = Loneliness(
            cfg.network,
            self.node_id,
            self._heard,
            self._lookup_peers,
            connected=lambda: self.link is not None and self.link.is_connected,
        )
        self.keys = KeyRing(cfg.seal)
        self.link: NatsLink | None = None
        self.tunnel: Datapath | None = None
        self.dataplane, self.dataplane_why = choose(cfg.dataplane, cfg.servers, cfg.auth.tls_first)
        self.follower: LinkFollower | None = None
        self.addr: AddressClient | None = None  # --address auto
        self._ctunnel: CTunnel | None = None  # the C datapath, when it runs
        self._dev: Device | None = None
        self._ready = asyncio.Event()
        self.offloads: tuple[str, ...] = ()
        self._stop = asyncio.Event()
        self._error: BaseException | None = None

    def stop(self) -> None:
        self._stop.set()

    def fail(self, error: BaseException) -> None:
        self._error = error
        self._stop.set()

    def reload(self) -> None:
        """SIGHUP: the sealing keys, the secret files, and the config file:
        what can change live is applied and logged, the rest is named in
        one WARNING and in status until the daemon is restarted."""
        self.keys.reload(self.tunnel)
        if self.link is not None:
            for value in self.link.options.values():
                if isinstance(value, SecretFile):
                    value()  # logs (and hands on) a changed secret
        self.cfg = self.config_reload()

    def _apply(self, change: Change, new: Config) -> None:
        """Hand one live change to the part that applies it."""
        tunnel = self.tunnel
        if change.name == "log_level":
            logging.getLogger().setLevel(new.log_level.upper())
        elif change.name == "storm_pps" and tunnel is not None:
            tunnel.set_storm(new.storm_pps)
        elif change.name in ("mac_ageing", "max_macs") and tunnel is not None:
            tunnel.set_switching(new.mac_ageing, new.max_macs)
        elif change.name == "mtu" and self._dev is not None:
            dev = self._dev
            task = asyncio.get_running_loop().create_task(dev.ctl.set(dev.index, mtu=new.mtu))
            task.add_done_callback(_log_failure("mtu"))

    def log_counters(self) -> None:
        """SIGUSR1: one line ``counters {json}`` with every counter."""
        if self.tunnel is not None:
            self.tunnel.refresh_counters()
        log.info("counters %s", json.dumps(self.counters.snapshot(), sort_keys=True))

    async def run(self) -> None:
        """Run until stop(); raises a VlanNatsError when set-up fails."""
        check_environment(self.cfg)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop)
        loop.add_signal_handler(signal.SIGUSR1, self.log_counters)
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        async with contextlib.AsyncExitStack() as stack:
            tasks = await self._setup(stack)
            try:
                await self._stop.wait()
            finally:
                sdnotify.notify("STOPPING=1")
                log.info("stopping dev=%s", self.cfg.dev)
                self.log_counters()
                for t in tasks:
                    t.cancel()
                self.dup.cancel()
                self.mtuw.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                if self.addr is not None:
                    await self.addr.release()
        if self._error is not None:
            raise self._error

    async def _setup(self, stack: contextlib.AsyncExitStack) -> list[asyncio.Task[None]]:
        """Everything, in order; each part registers its own teardown."""
        cfg = self.cfg
        nl = NetlinkThread()
        stack.callback(nl.close)
        dev = self._dev = await bring_up(cfg, nl, stack)
        self.offloads = dev.offloads
        mcast = McastList(cfg.netns)
        stack.callback(mcast.close)
        watcher = await stack.enter_async_context(LinkWatcher(nl, cfg.netns, dev.index))
        await self._serve(stack)
        log.info("datapath %s (%s)", self.dataplane, self.dataplane_why)
        link = self.link = self._nats_link()
        stack.push_async_callback(link.close)
        ctunnel: CTunnel | None = None
        sink: SubjectSink = link
        if self.dataplane == "c":
            from .aio.ctunnel import CTunnel

            ctunnel = CTunnel(
                dev.tap.fd,
                self._data_connection(),
                self.scheme,
                self.forwarder,
                self.counters,
                cfg.mtu,
                storm=TokenBucket(cfg.storm_pps),
                on_dup_mac=self.dup.seen,
                on_oversize=self.mtuw.oversize,
                arp_routing=cfg.arp_routing,
            )
            stack.push_async_callback(ctunnel.stop)
            sink = ctunnel
            self._ctunnel = ctunnel
        subs = Subscriptions(sink, self.scheme, self.forwarder, cfg.arp_routing)
        subs.groups = mcast.read(dev.index)
        subs.set_addresses(dev.addresses)
        switch = SwitchEvents(subs, self.counters, cfg.max_macs, cfg.bridge)
        stack.callback(switch.cancel)
        tunnel: Datapath
        if ctunnel is not None:
            ctunnel._on_events = switch.on_events
            switch.expire = ctunnel.expire
            tunnel = ctunnel
        else:
            pytunnel = Tunnel(
                dev.tap,
                link,
                self.scheme,
                self.forwarder,
                self.counters,
                cfg.mtu,
                storm=TokenBucket(cfg.storm_pps),
                on_events=switch.on_events,
                on_new_local=subs.add_local,
                on_dup_mac=self.dup.seen,
                on_oversize=self.mtuw.oversize,
                arp_memory=RepeatMemory() if cfg.arp_routing else None,
            )
            link.on_msg = pytunnel.on_msg
            stack.push_async_callback(pytunnel.stop)
            tunnel = pytunnel
        self.tunnel = tunnel
        self.keys.load(tunnel)
        tunnel.start()
        self.dupaddr.set_addresses(dev.addresses)
        follower = self.follower = LinkFollower(
            cfg,
            dev,
            subs,
            tunnel,
            self.fail,
            on_addresses=self.dupaddr.set_addresses,
            on_mtu=self.mtuw.mtu_changed,
        )
        if cfg.run_as is not None:
            privdrop.drop(cfg.run_as)
            log.info("dropped root user=%s", privdrop.describe(cfg.run_as))
        loop = asyncio.get_running_loop()
        tasks = [
            loop.create_task(self._connect(link, subs), name="nats-connect"),
            loop.create_task(follower.watch(watcher, mcast), name="link-watch"),
            loop.create_task(follower.poll(mcast), name="mcast-poll"),
            loop.create_task(switch.age(), name="mac-ageing"),
            loop.create_task(self._duplicate_addresses(link), name="dup-addr"),
            loop.create_task(self._after_ready(self.alone.run()), name="alone"),
        ]
        if cfg.address_auto:
            self.addr = AddressClient(
                link,
                self.scheme,
                lambda: self.forwarder.mac,
                self.node_id,
                add=lambda cidr: dev.ctl.add_address(dev.index, cidr),
                remove=lambda cidr: dev.ctl.del_address(dev.index, cidr),
            )
            tasks.append(loop.create_task(self._address(self.addr), name="address"))
        for t in tasks:
            t.add_done_callback(self._task_done)
        tunnel.failed.add_done_callback(lambda f: follower.tap_failed(f.result()))
        return tasks

    async def _duplicate_addresses(self, link: NatsLink) -> None:
        await self._ready.wait()
        await self.dupaddr.run(link.nc)

    async def _after_ready(self, work: Coroutine[Any, Any, None]) -> None:
        await self._ready.wait()
        await work

    def _heard(self) -> bool:
        """Has a frame come from the network (or a remote MAC been heard)?"""
        if self.tunnel is None:
            return False
        self.tunnel.refresh_counters()
        return self.counters.tap_tx_frames > 0 or self.tunnel.remote_macs(time.monotonic()) > 0

    def _mtu(self) -> int:
        """The TAP's MTU as the kernel has it now."""
        return self.follower.state.mtu if self.follower else self.cfg.mtu

    async def _notify(self, node_id: str, data: bytes) -> None:
        if self.link is not None and self.link.is_connected:
            await self.link.nc.publish(notice_subject(self.scheme, node_id), data)

    def _claim(self, address: str) -> Claim:
        """This node's claim on one of its addresses (core/addrclaim.py)."""
        leased = (
            {str(le["address"]).split("/")[0] for le in self.addr.describe()}
            if self.addr
            else set()
        )
        return Claim(
            node_id=self.node_id,
            hostname=socket.gethostname(),
            dev=self.cfg.dev,
            netns=self.where,
            mac=format_mac(self.forwarder.mac),
            address=address,
            how="ipam" if address in leased else "static",
        )

    async def _address(self, addr: AddressClient) -> None:
        await self._ready.wait()
        await addr.run()

    async def _serve(self, stack: contextlib.AsyncExitStack) -> None:
        """The status socket (a warning if it cannot be made) and metrics."""
        cfg = self.cfg
        sock = statussock.socket_path(cfg.dev, self.where)
        try:
            server = await statussock.serve(sock, lambda: self.status().to_json())
        except OSError as e:
            log.warning("no status socket path=%s error=%s", sock, e.strerror or e)
        else:
            # Ours only: a socket another daemon made at this path since
            # stays.  (After --run-as the directory is no longer ours to
            # change: then the next start removes the socket.)
            mine = statussock.identity_of(sock)
            stack.callback(lambda: statussock.remove_own(sock, mine))
            stack.callback(server.close)
            if cfg.run_as is not None:
                os.chown(sock, cfg.run_as.uid, cfg.run_as.gid)
        if cfg.metrics_listen is not None:
            from .aio import metrics  # prometheus-client: only when asked for

            host, port = cfg.metrics_listen
            try:
                msrv = await metrics.serve(host, port, self.status)
            except OSError as e:
                raise ConfigError(f"--metrics-listen {host}:{port}: {e.strerror or e}") from None
            stack.callback(msrv.close)
            log.info("metrics url=http://%s:%d/metrics", host, port)

    def _nats_link(self) -> NatsLink:
        cfg = self.cfg
        for path in cfg.auth.loose_files:
            log.warning("secret readable by others path=%s (chmod 600 it)", path)
        return NatsLink(
            cfg.servers,
            f"{self._conn_name} {'ctl' if self.dataplane == 'c' else 'data+ctl'}",
            self.counters,
            options=connect_options(cfg.auth, on_change=self._secret_changed),
            # Replies to our own lookups: a per-node permission can allow
            # exactly this (docs/security.md).
            inbox_prefix=f"_INBOX.{cfg.mac.hex()}",
        )

    def _secret_changed(self, path: str) -> None:
        """A token, password or creds file changed (the control connection
        reads them at every attempt): the C datapath's connection too."""
        ct, auth = self._ctunnel, self.cfg.auth
        if ct is None:
            return
        try:
            if path == auth.token_file:
                ct.set_secrets(token=read_secret(path, "token file", []))
            elif path == auth.creds_file:
                new = data_connection_secrets(auth)
                ct.set_secrets(jwt=new["jwt"], seed=new["seed"])
            elif path == auth.password_file:
                log.warning(
                    "password file changed path=%s: the C datapath's data connection takes "
                    "a new password only at restart (restart the daemon)",
                    path,
                )
        except ConfigError as e:
            log.warning("%s; the data connection keeps the credentials it has", e)

    @property
    def _conn_name(self) -> str:
        return f"vlan-nats {socket.gethostname()} {self.cfg.dev}"

    def _data_connection(self) -> ConnOptions:
        """The C datapath's own connection: the same servers and credentials."""
        return ConnOptions(
            servers=self.cfg.servers,
            name=f"{self._conn_name} data",
            **data_connection_secrets(self.cfg.auth),
        )

    @property
    def mode(self) -> str:
        cfg = self.cfg
        return "compat" if cfg.compat else f"bridge:{cfg.bridge}" if cfg.bridge else "native"

    def status(self) -> Status:
        """What ``vlan-nats status``, the metrics and ``top`` show."""
        if self.tunnel is not None:
            self.tunnel.refresh_counters()
        return report.status(self)

    def node_info(self) -> NodeInfo:
        """What this node answers to ``peers``: current counters, as in status."""
        if self.tunnel is not None:
            self.tunnel.refresh_counters()
        return report.node_info(self)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        """A background task must not die silently: its error stops the daemon."""
        if not task.cancelled() and task.exception() is not None:
            log.error("task failed task=%s error=%r", task.get_name(), task.exception())
            self.fail(task.exception())  # type: ignore[arg-type]

    async def _lookup_peers(self, timeout: float) -> list[NodeInfo]:
        link = self.link
        if link is None or not link.is_connected or link.inbox_refused:
            return []
        return await gather_peers(link.nc, self.scheme, timeout)

    async def _connect(self, link: NatsLink, subs: Subscriptions) -> None:
        cfg = self.cfg
        log.info("connecting servers=%s", ",".join(cfg.servers))
        await link.connect()
        # Before we subscribe: does another node already use our MAC?
        peers = await self._lookup_peers(LOOKUP_TIMEOUT)
        await self.dup.check_at_start(peers)
        self.mtuw.check_peers(peers)
        if self.tunnel is not None:
            await self.tunnel.wait_connected()
        # Subscribes and waits until the server(s) hold the SUBs.
        await subs.sync()
        await ControlResponder(
            self.scheme, self.node_id, self.node_info, on_notice=self.mtuw.notice
        ).start(link.nc)
        st = self.status()
        log.info(
            "ready dev=%s mac=%s network=%s server=%s netns=%s mtu=%d mode=%s datapath=%s "
            "auth=%s version=%s",
            cfg.dev,
            st.mac,
            cfg.network,
            link.server,
            cfg.netns or "-",
            st.mtu,
            self.mode,
            self.dataplane,
            cfg.auth.describe(),
            __version__,
        )
        sdnotify.notify("READY=1")
        self._ready.set()
        # Everything built during set-up (pyroute2, nats-py, our tables) lives
        # as long as the daemon: take it out of the collector's sight, so the
        # full collections that per-frame garbage triggers stay short.
        gc.collect()
        gc.freeze()
