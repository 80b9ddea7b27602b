"""The control plane over NATS request-reply: the daemon's responder and
the clients used by ``vlan-nats peers`` and ``vlan-nats ping``.

Every node answers ``<ctl>.peers`` with its NodeInfo and
``<ctl>.node.<node_id>.ping`` with a pong.  Requests are size-limited and
validated (core.control) and rate-limited per node; a malformed or excess
request gets no answer, never an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import Callable

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg

from ..core.control import NodeInfo, parse_request, pong
from ..core.subjects import SubjectScheme
from ..core.switching import TokenBucket

log = logging.getLogger(__name__)

REQUESTS_PER_S = 50.0


def peers_subject(scheme: SubjectScheme) -> str:
    return f"{scheme.control}.peers"


def ping_subject(scheme: SubjectScheme, node_id: str) -> str:
    return f"{scheme.control}.node.{node_id}.ping"


def notice_subject(scheme: SubjectScheme, node_id: str) -> str:
    return f"{scheme.control}.node.{node_id}.notice"


class ControlResponder:
    def __init__(
        self,
        scheme: SubjectScheme,
        node_id: str,
        info: Callable[[], NodeInfo],
        on_notice: Callable[[bytes], None] | None = None,
    ) -> None:
        self.scheme = scheme
        self.node_id = node_id
        self.info = info
        self.on_notice = on_notice
        self._bucket = TokenBucket(REQUESTS_PER_S, burst=REQUESTS_PER_S, now=time.monotonic())
        self._nc: Client | None = None

    async def start(self, nc: Client) -> None:
        """Subscribe (nats-py restores the subscriptions after reconnects)."""
        self._nc = nc
        await nc.subscribe(peers_subject(self.scheme), cb=self._on_peers)
        await nc.subscribe(ping_subject(self.scheme, self.node_id), cb=self._on_ping)
        if self.on_notice is not None:
            await nc.subscribe(notice_subject(self.scheme, self.node_id), cb=self._on_notice)

    def _accept(self, msg: Msg) -> dict[str, object] | None:
        if not msg.reply or not self._bucket.allow(time.monotonic()):
            return None
        return parse_request(msg.data)

    async def _on_peers(self, msg: Msg) -> None:
        if self._accept(msg) is not None and self._nc is not None:
            await self._nc.publish(msg.reply, self.info().encode())

    async def _on_notice(self, msg: Msg) -> None:
        if self.on_notice is not None and self._bucket.allow(time.monotonic()):
            self.on_notice(msg.data)

    async def _on_ping(self, msg: Msg) -> None:
        req = self._accept(msg)
        if req is not None and self._nc is not None:
            await self._nc.publish(msg.reply, pong(req, self.node_id))


async def gather_peers(nc: Client, scheme: SubjectScheme, timeout: float) -> list[NodeInfo]:
    """Ask every node; collect the replies that arrive within ``timeout``."""
    found: dict[str, NodeInfo] = {}
    for data in await ask_all(nc, peers_subject(scheme), b"{}", timeout):
        info = NodeInfo.decode(data)
        if info is not None:
            found[info.node_id] = info
    return sorted(found.values(), key=lambda i: (i.hostname, i.dev))


async def ask_all(nc: Client, subject: str, payload: bytes, timeout: float) -> list[bytes]:
    """Every answer to one request within ``timeout`` (many may answer);
    at once an empty list when nobody listens (the server's 503)."""
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    out: list[bytes] = []
    try:
        await nc.publish(subject, payload, reply=inbox)
        await nc.flush()
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                msg = await sub.next_msg(timeout=left)
            except nats.errors.TimeoutError:
                break
            if msg.headers and msg.headers.get("Status") == "503":
                break  # no responders
            out.append(msg.data)
    finally:
        await sub.unsubscribe()
    return out


async def ping_node(
    nc: Client, scheme: SubjectScheme, node_id: str, timeout: float
) -> float | None:
    """Control-plane round trip to one node in ms, or None without a reply."""
    token = secrets.token_hex(4)
    t0 = time.perf_counter()
    try:
        msg = await nc.request(
            ping_subject(scheme, node_id), json.dumps({"token": token}).encode(), timeout=timeout
        )
    except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
        return None
    rtt = (time.perf_counter() - t0) * 1000
    try:
        ok = json.loads(msg.data).get("token") == token
    except (ValueError, AttributeError):
        ok = False
    return rtt if ok else None


def find_nodes(peers: list[NodeInfo], target: str) -> list[NodeInfo]:
    """The nodes ``target`` names: its node id, a MAC of it (its TAP's or
    one behind its bridge), one of its addresses (with or without the
    prefix length), or its hostname.  Several when the name is ambiguous
    (a hostname with several daemons, a duplicate MAC or address)."""
    t = target.lower()
    by_id = [p for p in peers if t == p.node_id]
    if by_id:
        return by_id
    return [
        p
        for p in peers
        if t in p.macs
        or t == p.hostname.lower()
        or any(t in (a.lower(), a.split("/")[0].lower()) for a in p.addresses)
    ]


def describe_node(p: NodeInfo) -> str:
    """``host/netns/dev (node id, MAC)``: what tells one node from another."""
    where = "/".join(x for x in (p.hostname, p.netns, p.dev) if x)
    return f"{where} ({p.node_id}, {p.macs[0] if p.macs else '-'})"


def new_node_id() -> str:
    return secrets.token_hex(4)


async def connect_client(
    servers: tuple[str, ...], options: dict[str, object] | None = None, timeout: float = 3.0
) -> Client:
    """A short-lived client for the CLI: fail fast instead of retrying."""
    nc = Client()

    async def quiet(e: Exception) -> None:  # the caller reports the failure once
        pass

    # max_reconnect_attempts=1: nats-py treats 0 as "no limit" when it walks
    # its server pool, so 1 is what "try each server once" means.
    # A refused connect can leave nats-py's reader task failing after the
    # fact ("Task exception was never retrieved", a traceback): the caller
    # already says why in one line, so such leftovers go to the debug log.
    asyncio.get_running_loop().set_exception_handler(_leftover)
    try:
        await asyncio.wait_for(
            nc.connect(
                servers=list(servers),
                allow_reconnect=False,
                connect_timeout=max(1, round(timeout)),
                max_reconnect_attempts=1,
                error_cb=quiet,
                name="vlan-nats cli",
                **(options or {}),  # type: ignore[arg-type]
            ),
            timeout * (len(servers) + 1),
        )
    except BaseException:
        with contextlib.suppress(Exception):
            await nc.close()
        raise
    return nc


def _leftover(loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
    log.debug("nats client leftover: %s", context.get("exception") or context.get("message"))
