"""Bringing the device up: open the TAP, negotiate offloads, set MAC and
MTU, move it into ``--netns``, enslave it to ``--bridge``, add addresses,
set it up.  Everything opened is registered on the caller's exit stack,
so a failure at any step leaves nothing behind.

The TAP is created in our namespace (where /dev/net/tun and NATS are) and
then moved: MAC and MTU survive a namespace move; addresses and "up" do not.
"""

from __future__ import annotations

import contextlib
import errno
import logging
from dataclasses import dataclass

from ..config import Config
from ..errors import LinkError
from ..fastpath import Tap
from .link import LinkControl, LinkState
from .nlthread import NetlinkThread

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Device:
    tap: Tap
    index: int  # ifindex in the namespace the TAP lives in
    ctl: LinkControl  # netlink to that namespace
    offloads: tuple[str, ...]
    state: LinkState
    addresses: tuple[str, ...]


async def _control(
    nl: NetlinkThread, ns: str | None, stack: contextlib.AsyncExitStack, dev: str
) -> LinkControl:
    ctl = await LinkControl.open(nl, ns)
    stack.push_async_callback(ctl.close)
    if await ctl.lookup(dev) is not None:
        where = f" in namespace {ns!r}" if ns is not None else ""
        raise LinkError(errno.EEXIST, f"device {dev} already exists{where}")
    return ctl


async def bring_up(cfg: Config, nl: NetlinkThread, stack: contextlib.AsyncExitStack) -> Device:
    """The configured device, up and addressed.  LinkError/TapError/NetnsError."""
    here = await _control(nl, None, stack, cfg.dev)
    ctl = here if cfg.netns is None else await _control(nl, cfg.netns, stack, cfg.dev)
    tap = Tap.open(cfg.dev, vnet_hdr=True)
    stack.callback(tap.close)
    offloads = tap.negotiate_offloads() if cfg.offload else ()
    log.info(
        "offloads negotiated=%s",
        ",".join(o.lower() for o in offloads) or ("none" if cfg.offload else "off"),
    )
    index = await here.lookup(tap.name)
    if index is None:
        raise LinkError(errno.ENODEV, f"device {tap.name} vanished after creation")
    await here.set(index, mac=cfg.mac, mtu=cfg.mtu)
    if cfg.netns is not None:
        await here.move_to(index, cfg.netns)
        index = await ctl.lookup(tap.name)
        if index is None:
            raise LinkError(errno.ENODEV, f"device {tap.name} vanished moving to {cfg.netns!r}")
    if cfg.bridge is not None:
        bridge = await ctl.lookup(cfg.bridge)
        if bridge is None:
            where = f" in namespace {cfg.netns!r}" if cfg.netns else ""
            raise LinkError(errno.ENODEV, f"bridge {cfg.bridge} does not exist{where}")
        await ctl.set(index, master=bridge)
    for cidr in cfg.addresses:
        await ctl.add_address(index, cidr)
    if cfg.up:
        await ctl.set(index, up=True)
    return Device(tap, index, ctl, offloads, await ctl.state(index), await ctl.addresses(index))
