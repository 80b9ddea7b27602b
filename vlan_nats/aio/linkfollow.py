"""Following what users do to the device with ``ip``.

- ``ip link set DEV address|mtu|up|down``: the forwarder's MAC, the
  subscriptions and the tunnel's frame limit follow; logged at INFO.
- address changes: routed ARP's subjects follow the IPv4 addresses.
- address changes and multicast joins: the groups are re-read (on every
  address event, and every MCAST_POLL_INTERVAL s) and resubscribed.
- ``ip link set DEV master BR`` without ``--bridge``: a warning naming
  ``--bridge BR`` (hosts behind BR would be unreachable), shown in status.
- ``ip link del DEV`` or ``ip netns del NS``: the daemon stops with one
  line, "device DEV was deleted" / "namespace NS was deleted".  Our own
  sockets keep a deleted namespace alive, so its name is polled too.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from collections.abc import Callable

from ..config import Config
from ..control import netns
from ..control.bringup import Device
from ..control.link import LinkState
from ..control.watch import AddressEvent, LinkEvent, LinkWatcher, McastList
from ..core.mac import format_mac
from ..errors import LinkError, NetnsError, TapError
from .datapath import Datapath
from .switchctl import Subscriptions

log = logging.getLogger(__name__)

MCAST_POLL_INTERVAL = 1.0


def _inode(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


class LinkFollower:
    def __init__(
        self,
        cfg: Config,
        device: Device,
        subs: Subscriptions,
        tunnel: Datapath,
        fail: Callable[[BaseException], None],
        on_addresses: Callable[[tuple[str, ...]], None] | None = None,
        on_mtu: Callable[[], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.on_addresses = on_addresses  # told every change of the TAP's addresses
        self.on_mtu = on_mtu  # told every change of its MTU (after the datapath)
        self.device = device
        self.subs = subs
        self.tunnel = tunnel
        self.fail = fail
        self.state: LinkState = device.state
        self.addresses = device.addresses
        self.foreign_master: str | None = None  # a bridge we were enslaved to without --bridge
        self._netns_id = _inode(netns.path_of(cfg.netns)) if cfg.netns is not None else None

    def gone(self) -> LinkError | NetnsError:
        """Why the TAP went away: its namespace was deleted, or it was."""
        ns = self.cfg.netns
        if ns is not None and _inode(netns.path_of(ns)) != self._netns_id:
            return NetnsError(errno.ENOENT, f"namespace {ns} was deleted")
        return LinkError(errno.ENODEV, f"device {self.cfg.dev} was deleted")

    def tap_failed(self, error: BaseException) -> None:
        # A deleted device reads as EBADFD/ENODEV; that is news, not a bug.
        if isinstance(error, TapError) and error.errno in (
            errno.EBADFD,
            errno.EBADF,
            errno.ENODEV,
            errno.EIO,
        ):
            error = self.gone()
        self.fail(error)

    async def watch(self, watcher: LinkWatcher, mcast: McastList) -> None:
        """A task: follow link and address events until the link is deleted."""
        ctl, index = self.device.ctl, self.device.index
        async for event in watcher.events():
            if isinstance(event, AddressEvent):
                self.addresses = await ctl.addresses(index)
                if self.on_addresses is not None:
                    self.on_addresses(self.addresses)
                if self.subs.set_addresses(self.addresses):
                    log.debug("arp subjects addresses=%s", ",".join(self.addresses))
                    await self.subs.sync()
                await self.refresh_groups(mcast)
                continue
            assert isinstance(event, LinkEvent)
            st = event.state
            if st is None:
                self.fail(self.gone())
                return
            await self._check_bridge_port(st)
            old = self.state
            self.state = st
            fwd = self.subs.forwarder
            if st.mac and st.mac != fwd.mac:
                log.info("mac changed old=%s new=%s", format_mac(fwd.mac), format_mac(st.mac))
                fwd.mac = st.mac
                self.tunnel.set_mac(st.mac)
                await self.subs.sync()
            if st.mtu != old.mtu:
                self.tunnel.set_mtu(st.mtu)
                log.info("mtu changed old=%d new=%d", old.mtu, st.mtu)
                if self.on_mtu is not None:
                    self.on_mtu()
            if st.up != old.up:
                log.info("link %s dev=%s", "up" if st.up else "down", st.name)
            await self.refresh_groups(mcast)

    async def _check_bridge_port(self, st: LinkState) -> None:
        if self.cfg.bridge is not None:
            return
        if st.master is None:
            if self.foreign_master is not None:
                log.info("device %s left bridge %s", st.name, self.foreign_master)
            self.foreign_master = None
            return
        name = await self.device.ctl.name_of(st.master)
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

    async def refresh_groups(self, mcast: McastList) -> None:
        groups = mcast.read(self.device.index)
        if groups != self.subs.groups:
            log.debug("multicast groups=%s", sorted(format_mac(g) for g in groups))
            self.subs.groups = groups
            await self.subs.sync()

    async def poll(self, mcast: McastList) -> None:
        """A task: joins without an address event; a deleted namespace."""
        ns = self.cfg.netns
        while True:
            await asyncio.sleep(MCAST_POLL_INTERVAL)
            if ns is not None and _inode(netns.path_of(ns)) != self._netns_id:
                self.fail(self.gone())
                return
            await self.refresh_groups(mcast)
