"""The daemon: set-up -> run -> signals -> teardown.

Set-up brings the device up (control/bringup.py: a non-persistent TAP that
vanishes with our fd, so even a SIGKILL leaves no device), serves the
status socket (and metrics), connects to NATS (retrying forever), starts
the tunnel, and subscribes; then it logs one ``ready`` line and tells
systemd.  The work is done by the parts it wires together:

    bring_up      control/bringup.py   the TAP, MAC, MTU, netns, bridge, addresses
    Datapath      aio/datapath.py      frames TAP <-> NATS: the python datapath
                                       (aio/tunnel.py) or the C one (aio/ctunnel.py)
    Subscriptions aio/switchctl.py     what we subscribe to; SwitchEvents: learning
    LinkFollower  aio/linkfollow.py    `ip` changes, a deleted device or namespace
    DuplicateMac  aio/dupmac.py        another node with our MAC
    KeyRing       keyring.py           sealing keys, SIGHUP reload

wiring.py makes the parts from the config and holds them (Parts), which
report.py reads for ``status`` and ``peers``.
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
from collections.abc import Callable, Coroutine
from typing import Any

from . import privdrop, report, sdnotify, wiring
from .aio import datapath
from .aio.addrclient import AddressClient
from .aio.dupmac import LOOKUP_TIMEOUT
from .aio.linkfollow import LinkFollower
from .aio.natslink import NatsLink
from .aio.switchctl import Subscriptions, SwitchEvents
from .auth import SecretFile
from .config import Config
from .control import netns
from .control.bringup import Device, bring_up
from .control.nlthread import NetlinkThread
from .control.watch import LinkWatcher, McastList
from .core.control import NodeInfo
from .core.settings import Change
from .core.status import Status
from .errors import PrivilegeError, TapError
from .reload import ConfigReload, Read

log = logging.getLogger(__name__)

CAP_NET_ADMIN = 12  # include/uapi/linux/capability.h


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
        self,
        cfg: Config,
        reload: Read | None = None,
        explicit_mac: bool = False,
        explicit: frozenset[str] = frozenset(),
    ) -> None:
        auth = cfg.auth
        dataplane, self.dataplane_why = datapath.choose(cfg.dataplane, cfg.servers, auth.tls_first)
        self.p = wiring.make(cfg, dataplane, ConfigReload(cfg, reload, explicit_mac, self._apply),
                             self.node_info, explicit)  # fmt: skip
        self.subs: Subscriptions | None = None
        self.switch: SwitchEvents | None = None
        self._ready = asyncio.Event()
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
        p = self.p
        p.keys.reload(p.tunnel)
        if p.link is not None:
            for value in p.link.options.values():
                if isinstance(value, SecretFile):
                    value()  # logs (and hands on) a changed secret
        p.cfg = p.config_reload()

    def _apply(self, change: Change, new: Config) -> None:
        wiring.apply(self.p, change, new)

    def log_counters(self) -> None:
        """SIGUSR1: one line ``counters {json}`` with every counter."""
        if self.p.tunnel is not None:
            self.p.tunnel.refresh_counters()
        log.info("counters %s", json.dumps(self.p.counters.snapshot(), sort_keys=True))

    async def run(self) -> None:
        """Run until stop(); raises a VlanNatsError when set-up fails."""
        p = self.p
        check_environment(p.cfg)
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
                log.info("stopping dev=%s", p.cfg.dev)
                self.log_counters()
                for t in tasks:
                    t.cancel()
                p.dup.cancel()
                p.mtuw.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                if p.addr is not None:
                    await p.addr.release()
        if self._error is not None:
            raise self._error

    async def _setup(self, stack: contextlib.AsyncExitStack) -> list[asyncio.Task[None]]:
        """Everything, in order; each part registers its own teardown."""
        p, cfg = self.p, self.p.cfg
        nl = NetlinkThread()
        stack.callback(nl.close)
        dev = p.dev = await bring_up(cfg, nl, stack)
        p.offloads = dev.offloads
        mcast = McastList(cfg.netns)
        stack.callback(mcast.close)
        watcher = await stack.enter_async_context(LinkWatcher(nl, cfg.netns, dev.index))
        await wiring.serve(p, stack, self.status)
        log.info("datapath %s (%s)", p.dataplane, self.dataplane_why)
        link = p.link = wiring.nats_link(cfg, p.counters, p.dataplane,
                                         lambda path: wiring.secret_changed(p, path))  # fmt: skip
        stack.push_async_callback(link.close)
        tunnel, sink = datapath.build(
            p.dataplane, cfg, dev.tap, link, (p.scheme, p.forwarder, p.counters),
            datapath.Hooks(self._mac_events, self._new_local, p.dup.seen, p.mtuw.oversize,
                           p.priority),
            lambda: wiring.data_connection(cfg),
        )  # fmt: skip
        stack.push_async_callback(tunnel.stop)
        subs = self.subs = p.subs = Subscriptions(sink, p.scheme, p.forwarder, cfg.arp_routing)
        subs.groups = mcast.read(dev.index)
        subs.set_addresses(dev.addresses)
        switch = self.switch = SwitchEvents(subs, p.counters, cfg.max_macs, cfg.bridge,
                                            expire=tunnel.expire)  # fmt: skip
        stack.callback(switch.cancel)
        p.tunnel = tunnel
        p.keys.load(tunnel)
        tunnel.start()
        p.dupaddr.set_addresses(dev.addresses)
        follower = p.follower = LinkFollower(cfg, dev, subs, tunnel, self.fail,
                                             on_addresses=p.dupaddr.set_addresses,
                                             on_mtu=lambda: wiring.mtu_changed(p))  # fmt: skip
        if cfg.run_as is not None:
            privdrop.drop(cfg.run_as, keep_nice=cfg.datapath_nice)
            log.info("dropped root user=%s", privdrop.describe(cfg.run_as))
        tasks = self._tasks(link, subs, switch, follower, watcher, mcast, dev)
        tunnel.failed.add_done_callback(lambda f: follower.tap_failed(f.result()))
        return tasks

    def _tasks(self, link: NatsLink, subs: Subscriptions, switch: SwitchEvents,
               follower: LinkFollower, watcher: LinkWatcher, mcast: McastList,
               dev: Device) -> list[asyncio.Task[None]]:  # fmt: skip
        """What runs until the daemon stops; a task that fails stops it."""
        p, loop = self.p, asyncio.get_running_loop()
        work: dict[str, Coroutine[Any, Any, None]] = {
            "nats-connect": self._connect(link, subs),
            "link-watch": follower.watch(watcher, mcast),
            "mcast-poll": follower.poll(mcast),
            "mac-ageing": switch.age(),
            "dup-addr": self._after_ready(lambda: p.dupaddr.run(link.nc)),
            "alone": self._after_ready(p.alone.run),
            "stall": self._after_ready(p.stall.run),
            "network": self._after_ready(lambda: p.netwatch.run(link.nc)),
            "member": self._after_ready(lambda: wiring.member(p, self.status)),
        }
        if p.cfg.address_auto:
            ctl, idx = dev.ctl, dev.index
            addr = p.addr = AddressClient(
                link, p.scheme, lambda: p.forwarder.mac, p.node_id,
                add=lambda cidr: ctl.add_address(idx, cidr),
                remove=lambda cidr: ctl.del_address(idx, cidr),
            )  # fmt: skip
            work["address"] = self._after_ready(lambda: wiring.address(p, addr))
        tasks = [loop.create_task(coro, name=name) for name, coro in work.items()]
        for t in tasks:
            t.add_done_callback(self._task_done)
        return tasks

    async def _after_ready(self, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        await self._ready.wait()
        await work()

    def _mac_events(self) -> None:
        """The datapath's learning changed something: the switch acts on it."""
        if self.switch is not None:
            self.switch.on_events()

    async def _new_local(self, mac: bytes) -> None:
        """Python datapath, bridge mode: subscribe a new MAC behind our
        bridge before its frame leaves."""
        if self.subs is not None:
            await self.subs.add_local(mac)

    def status(self) -> Status:
        """What ``vlan-nats status``, the metrics and ``top`` show."""
        return report.status(self.p)

    def node_info(self) -> NodeInfo:
        """What this node answers to ``peers``: current counters, as in status."""
        return report.node_info(self.p)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        """A background task must not die silently: its error stops the daemon."""
        if not task.cancelled() and task.exception() is not None:
            log.error("task failed task=%s error=%r", task.get_name(), task.exception())
            self.fail(task.exception())  # type: ignore[arg-type]

    async def _lookup_peers(self, timeout: float) -> list[NodeInfo]:
        return await wiring.lookup_peers(self.p, timeout)

    async def _connect(self, link: NatsLink, subs: Subscriptions) -> None:
        p = self.p
        log.info("connecting servers=%s", ",".join(p.cfg.servers))
        await link.connect()
        # The network's definition, before we say ready (aio/netwatch.py).
        await p.netwatch.first(link.nc)
        # Before we subscribe: does another node already use our MAC?
        peers = await self._lookup_peers(LOOKUP_TIMEOUT)
        await p.dup.check_at_start(peers)
        p.mtuw.check_peers(peers)
        if p.tunnel is not None:
            await p.tunnel.wait_connected()
        # Subscribes and waits until the server(s) hold the SUBs.
        await subs.sync()
        await wiring.respond(p, self.node_info, self.status(), link.nc)
        wiring.log_ready(self.p, self.status(), link.server)
        sdnotify.notify("READY=1")
        self._ready.set()
        # Everything built during set-up (pyroute2, nats-py, our tables) lives
        # as long as the daemon: take it out of the collector's sight, so the
        # full collections that per-frame garbage triggers stay short.
        gc.collect()
        gc.freeze()
