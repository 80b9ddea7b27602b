"""Link configuration over netlink (pyroute2's AsyncIPRoute).

One LinkControl talks to one namespace; its netlink socket is opened inside
that namespace (see netns.py), so the rest of the daemon stays where NATS is.
pyroute2 runs on the NetlinkThread's loop; these methods may be awaited
from the daemon's (uvloop) loop.
"""

from __future__ import annotations

import errno
import os
import socket
from dataclasses import dataclass

from pyroute2 import AsyncIPRoute
from pyroute2.netlink.exceptions import NetlinkError

from ..core.mac import format_mac, parse_mac
from ..errors import LinkError
from . import netns
from .nlthread import NetlinkThread

IFF_UP = 0x1


@dataclass(frozen=True, slots=True)
class LinkState:
    index: int
    name: str
    mac: bytes
    mtu: int
    up: bool
    master: int | None = None  # ifindex of the bridge it is a port of
    # Frames the kernel dropped on their way to the daemon (its queue full).
    tx_dropped: int | None = None


def link_state(msg: object) -> LinkState:
    """A pyroute2 ifinfmsg -> LinkState."""
    get = msg.get_attr  # type: ignore[attr-defined]
    mac = get("IFLA_ADDRESS")
    stats = get("IFLA_STATS64")
    return LinkState(
        index=msg["index"],  # type: ignore[index]
        name=get("IFLA_IFNAME") or "",
        mac=parse_mac(mac) if mac else b"",
        mtu=get("IFLA_MTU") or 0,
        up=bool(msg["flags"] & IFF_UP),  # type: ignore[index]
        master=get("IFLA_MASTER") or None,
        tx_dropped=stats["tx_dropped"] if stats is not None else None,
    )


def netlink_socket(ns: str | None) -> socket.socket:
    """An rtnetlink socket inside namespace ``ns``."""
    return netns.call_in(
        ns, lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, socket.NETLINK_ROUTE)
    )


async def open_iproute(nl: NetlinkThread, ns: str | None) -> AsyncIPRoute:
    """An AsyncIPRoute living on ``nl``'s loop, talking to namespace ``ns``."""
    fileno = netlink_socket(ns).detach()

    async def _open() -> AsyncIPRoute:
        ipr = AsyncIPRoute(fileno=fileno)
        await ipr.setup_endpoint()
        return ipr

    return await nl.call(_open())


def _err(e: NetlinkError, what: str) -> LinkError:
    return LinkError(e.code, f"{what}: {errno.errorcode.get(e.code, e.code)} ({e})")


class LinkControl:
    def __init__(self, nl: NetlinkThread, ipr: AsyncIPRoute, ns: str | None) -> None:
        self.nl = nl
        self.ipr = ipr
        self.ns = ns

    @classmethod
    async def open(cls, nl: NetlinkThread, ns: str | None) -> LinkControl:
        return cls(nl, await open_iproute(nl, ns), ns)

    async def lookup(self, name: str) -> int | None:
        found = await self.nl.call(self.ipr.link_lookup(ifname=name))
        return found[0] if found else None

    async def state(self, index: int) -> LinkState:
        async def _get() -> LinkState | None:
            try:
                msgs = await self.ipr.link("get", index=index)
            except NetlinkError:
                return None
            return link_state(msgs[0]) if msgs else None

        st = await self.nl.call(_get())
        if st is None:
            raise LinkError(errno.ENODEV, f"link {index} is gone")
        return st

    async def set(
        self,
        index: int,
        *,
        mac: bytes | None = None,
        mtu: int | None = None,
        up: bool | None = None,
        master: int | None = None,
    ) -> None:
        kw: dict[str, object] = {}
        if master is not None:
            kw["master"] = master
        if mac is not None:
            kw["address"] = format_mac(mac)
        if mtu is not None:
            kw["mtu"] = mtu
        if up is not None:
            kw["state"] = "up" if up else "down"
        try:
            await self.nl.call(self.ipr.link("set", index=index, **kw))
        except NetlinkError as e:
            raise _err(e, f"configure link {index} {kw}") from None

    async def name_of(self, index: int) -> str:
        """The name of link ``index`` ("#index" if it is gone)."""
        try:
            return (await self.state(index)).name
        except LinkError:
            return f"#{index}"

    async def addresses(self, index: int) -> tuple[str, ...]:
        """The addresses of link ``index`` as CIDR text, IPv4 first."""

        async def _get() -> list[object]:
            try:
                return [m async for m in await self.ipr.addr("dump", index=index)]
            except NetlinkError:
                return []

        out = []
        for msg in await self.nl.call(_get()):
            addr = msg.get_attr("IFA_ADDRESS")  # type: ignore[attr-defined]
            if addr and msg.get("index") == index:  # type: ignore[attr-defined]
                out.append((msg["family"], f"{addr}/{msg['prefixlen']}"))  # type: ignore[index]
        return tuple(a for _, a in sorted(out))

    async def add_address(self, index: int, cidr: str) -> None:
        addr, plen = cidr.split("/")
        try:
            await self.nl.call(self.ipr.addr("add", index=index, address=addr, prefixlen=int(plen)))
        except NetlinkError as e:
            if e.code == errno.EEXIST:
                return
            raise _err(e, f"add address {cidr}") from None

    async def del_address(self, index: int, cidr: str) -> None:
        addr, plen = cidr.split("/")
        try:
            await self.nl.call(self.ipr.addr("del", index=index, address=addr, prefixlen=int(plen)))
        except NetlinkError as e:
            if e.code in (errno.EADDRNOTAVAIL, errno.ENODEV):
                return
            raise _err(e, f"remove address {cidr}") from None

    async def move_to(self, index: int, ns: str) -> None:
        fd = netns.open_fd(ns)
        try:
            await self.nl.call(self.ipr.link("set", index=index, net_ns_fd=fd))
        except NetlinkError as e:
            if e.code == errno.EEXIST:
                raise LinkError(
                    e.code, f"a device of that name already exists in namespace {ns!r}"
                ) from None
            raise _err(e, f"move link to namespace {ns}") from None
        finally:
            os.close(fd)

    async def close(self) -> None:
        async def _close() -> None:
            self.ipr.close()

        await self.nl.call(_close())
