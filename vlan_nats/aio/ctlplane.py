"""The control plane over NATS request-reply: the daemon's responder and
the clients used by ``vlan-nats peers`` and ``vlan-nats ping``.

Every node answers ``<ctl>.peers`` with its NodeInfo and
``<ctl>.node.<node_id>.ping`` with a pong, as the endpoints of its ADR-32
service ``vlan-nats-node`` (aio/services.py).  Requests are size-limited and
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
from nats.micro.service import Service

from ..core.control import NodeInfo, parse_request, pong
from ..core.subjects import SubjectScheme
from ..core.switching import TokenBucket
from . import services

log = logging.getLogger(__name__)

REQUESTS_PER_S = 50.0


def peers_subject(scheme: SubjectScheme) -> str:
    return f"{scheme.control}.peers"


def ping_subject(scheme: SubjectScheme, node_id: str) -> str:
    return f"{scheme.control}.node.{node_id}.ping"


def notice_subject(scheme: SubjectScheme, node_id: str) -> str:
    return f"{scheme.control}.node.{node_id}.notice"


class ControlResponder:
    """The node's control subjects, served as the ADR-32 service
    ``vlan-nats-node`` (aio/services.py): ``peers`` (every node answers)
    and its own ``ping``; notices are plain messages."""

    def __init__(
        self,
        scheme: SubjectScheme,
        node_id: str,
        info: Callable[[], NodeInfo],
        on_notice: Callable[[bytes], None] | None = None,
        metadata: dict[str, str | None] | None = None,
    ) -> None:
        self.scheme = scheme
        self.node_id = node_id
        self.info = info
        self.on_notice = on_notice
        self.metadata = {"node_id": node_id, "network": scheme.network, **(metadata or {})}
        self._bucket = TokenBucket(REQUESTS_PER_S, burst=REQUESTS_PER_S, now=time.monotonic())
        self.service: Service | None = None

    async def start(self, nc: Client) -> None:
        """Subscribe (nats-py restores the subscriptions after reconnects)."""
        svc = await services.start(nc, services.NODE, "a vlan-nats node (one TAP on one "
                                   "network)", self.metadata, self._figures, "peers")  # fmt: skip
        await services.endpoint(svc, "peers", peers_subject(self.scheme), self._on_peers)
        await services.endpoint(svc, "ping", ping_subject(self.scheme, self.node_id), self._on_ping)
        self.service = svc
        if self.on_notice is not None:
            await nc.subscribe(notice_subject(self.scheme, self.node_id), cb=self._on_notice)

    def _figures(self) -> dict[str, object]:
        i = self.info()
        return {"addresses": i.addresses, "mtu": i.mtu, "uptime_s": round(i.uptime_s, 1),
                "server": i.server, **i.counters}  # fmt: skip

    def _accept(self, data: bytes) -> dict[str, object] | None:
        if not self._bucket.allow(time.monotonic()):
            return None
        return parse_request(data)

    async def _on_peers(self, data: bytes) -> bytes | None:
        return self.info().encode() if self._accept(data) is not None else None

    async def _on_notice(self, msg: Msg) -> None:
        if self.on_notice is not None and self._bucket.allow(time.monotonic()):
            self.on_notice(msg.data)

    async def _on_ping(self, data: bytes) -> bytes | None:
        req = self._accept(data)
        return pong(req, self.node_id) if req is not None else None


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
