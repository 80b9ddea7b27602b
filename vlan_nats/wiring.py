"""The daemon's parts and how they are made from the config: what the
daemon wires together (``Parts``, read by report.py), its NATS connections,
its status socket and metrics, and the answers the parts ask of each other.
The daemon (daemon.py) runs them; nothing here keeps running on its own."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import nats.errors
from nats.aio.client import Client

from . import __version__
from .aio import statussock
from .aio.addrclient import AddressClient
from .aio.alone import Loneliness
from .aio.ctlplane import ControlResponder, gather_peers, new_node_id, notice_subject
from .aio.datapath import Datapath
from .aio.dupaddr import DuplicateAddress
from .aio.dupmac import DuplicateMac
from .aio.linkfollow import LinkFollower
from .aio.mtucheck import MtuWatch
from .aio.natslink import NatsLink
from .aio.netwatch import NetWatch
from .aio.priority import Priority
from .aio.stall import StallWatch, Tally
from .aio.switchctl import Subscriptions
from .auth import connect_options, data_connection_secrets, read_secret
from .cdatapath import ConnOptions
from .config import Config
from .control import netns
from .control.bringup import Device
from .core.addrclaim import Claim
from .core.control import NodeInfo
from .core.counters import Counters, DropReason
from .core.forwarding import Forwarder
from .core.mac import format_mac
from .core.settings import Change
from .core.status import Status
from .core.subjects import SubjectScheme
from .core.switching import MacTable
from .errors import ConfigError
from .keyring import KeyRing
from .netdef import node_keys
from .reload import ConfigReload

log = logging.getLogger("vlan_nats.daemon")  # its lines are the daemon's
MEMBER_FIRST = 3.0  # s: --address auto waits this long at most for our member entry


@dataclass
class Parts:
    """What one daemon is made of.  The first group exists from the start;
    the second is filled in by set-up as each part is made."""

    cfg: Config
    node_id: str
    where: str | None  # the TAP's namespace: --netns, or the one we run in
    started: float
    dataplane: str
    scheme: SubjectScheme
    forwarder: Forwarder
    counters: Counters
    dup: DuplicateMac
    dupaddr: DuplicateAddress
    mtuw: MtuWatch
    alone: Loneliness
    stall: StallWatch  # stalls and frames the kernel dropped at the TAP
    priority: Priority  # --datapath-nice, as the datapath's thread got it
    keys: KeyRing
    config_reload: ConfigReload
    netwatch: NetWatch  # the network's definition, watched (aio/netwatch.py)
    link: NatsLink | None = None
    tunnel: Datapath | None = None
    follower: LinkFollower | None = None
    addr: AddressClient | None = None  # --address auto
    subs: Subscriptions | None = None
    dev: Device | None = None
    offloads: tuple[str, ...] = ()
    # Set when what this node says of itself changed (a definition applied):
    # its member entry is written at once.
    member_news: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    # Our entry in the members bucket was written (the address service
    # leases to members only: we ask after it, aio/ipam.py).
    member_written: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)


def make(
    cfg: Config,
    dataplane: str,
    config_reload: ConfigReload,
    node_info: Callable[[], NodeInfo],
    explicit: frozenset[str] = frozenset(),
) -> Parts:
    """The parts that exist from the start, with the answers they ask of
    each other."""
    scheme = SubjectScheme(cfg.subject_prefix, cfg.network, cfg.compat)
    node_id = new_node_id()

    async def peers(timeout: float) -> list[NodeInfo]:
        return await lookup_peers(p, timeout)

    p = Parts(
        cfg=cfg,
        node_id=node_id,
        # The namespace the TAP lives in: --netns, else the one we run in
        # (`ip netns exec NAME`); None for the host's own.
        where=cfg.netns or netns.current() or None,
        started=time.monotonic(),
        dataplane=dataplane,
        scheme=scheme,
        forwarder=Forwarder(cfg.mac, MacTable(cfg.mac_ageing, cfg.max_macs),
                            cfg.bridge is not None),
        counters=Counters(),
        dup=DuplicateMac(lambda: p.forwarder.mac, node_id, peers),
        dupaddr=DuplicateAddress(scheme, lambda a: claim(p, a)),
        mtuw=MtuWatch(node_info, lambda: mtu(p), peers, lambda n, data: notify(p, n, data)),
        alone=Loneliness(cfg.network, node_id, lambda: heard(p), peers,
                         connected=lambda: bool(p.link and p.link.is_connected)),
        stall=StallWatch(cfg.dev, lambda: tally(p)),
        priority=Priority(cfg.datapath_nice),
        keys=KeyRing(cfg.seal),
        config_reload=config_reload,  # SIGHUP: the config file read again (reload.py)
        netwatch=NetWatch(scheme, {k: getattr(cfg, k) for k in node_keys()}, explicit,
                          lambda key, value: apply_network(p, key, value), lambda: mtu(p),
                          has_key=cfg.seal is not None,
                          block=lambda on: p.tunnel.set_blocked(on) if p.tunnel else None),
    )  # fmt: skip
    return p


def mode_of(cfg: Config) -> str:
    return "compat" if cfg.compat else f"bridge:{cfg.bridge}" if cfg.bridge else "native"


def conn_name(cfg: Config) -> str:
    return f"vlan-nats {socket.gethostname()} {cfg.dev}"


def nats_link(cfg: Config, counters: Counters, dataplane: str,
              on_secret_change: Callable[[str], None]) -> NatsLink:  # fmt: skip
    """The control connection (with the python datapath: frames too)."""
    for path in cfg.auth.loose_files:
        log.warning("secret readable by others path=%s (chmod 600 it)", path)
    return NatsLink(
        cfg.servers,
        f"{conn_name(cfg)} {'ctl' if dataplane == 'c' else 'data+ctl'}",
        counters,
        options=connect_options(cfg.auth, on_change=on_secret_change),
        # Replies to our own lookups: a per-node permission can allow
        # exactly this (docs/security.md).
        inbox_prefix=f"_INBOX.{cfg.mac.hex()}",
    )


def data_connection(cfg: Config) -> ConnOptions:
    """The C datapath's own connection: the same servers and credentials."""
    return ConnOptions(
        servers=cfg.servers,
        name=f"{conn_name(cfg)} data",
        **data_connection_secrets(cfg.auth),
    )


def secret_changed(p: Parts, path: str) -> None:
    """A token, password or creds file changed (the control connection
    reads them at every attempt): the datapath's own connection too."""
    tunnel, auth = p.tunnel, p.cfg.auth
    if tunnel is None or p.dataplane != "c":
        return
    try:
        if path == auth.token_file:
            tunnel.set_secrets(token=read_secret(path, "token file", []))
        elif path == auth.creds_file:
            new = data_connection_secrets(auth)
            tunnel.set_secrets(jwt=new["jwt"], seed=new["seed"])
        elif path == auth.password_file:
            log.warning(
                "password file changed path=%s: the C datapath's data connection takes "
                "a new password only at restart (restart the daemon)",
                path,
            )
    except ConfigError as e:
        log.warning("%s; the data connection keeps the credentials it has", e)


async def serve(p: Parts, stack: contextlib.AsyncExitStack, status: Callable[[], Status]) -> None:
    """The status socket (a warning if it cannot be made) and metrics."""
    cfg = p.cfg
    sock = statussock.socket_path(cfg.dev, p.where)
    try:
        server = await statussock.serve(sock, lambda: status().to_json())
    except OSError as e:
        log.warning("no status socket path=%s error=%s", sock, e.strerror or e)
    else:
        # Ours only: a socket another daemon made at this path since stays.
        # (After --run-as the directory is no longer ours to change: then
        # the next start removes the socket.)
        mine = statussock.identity_of(sock)
        stack.callback(lambda: statussock.remove_own(sock, mine))
        stack.callback(server.close)
        if cfg.run_as is not None:
            os.chown(sock, cfg.run_as.uid, cfg.run_as.gid)
    if cfg.metrics_listen is not None:
        from .aio import metrics  # prometheus-client: only when asked for

        host, port = cfg.metrics_listen
        try:
            msrv = await metrics.serve(host, port, metrics.registry_for(status))
        except OSError as e:
            raise ConfigError(f"--metrics-listen {host}:{port}: {e.strerror or e}") from None
        stack.callback(msrv.close)
        log.info("metrics url=http://%s:%d/metrics", host, port)


def claim(p: Parts, address: str) -> Claim:
    """This node's claim on one of its addresses (core/addrclaim.py)."""
    leased = {str(le["address"]).split("/")[0] for le in p.addr.describe()} if p.addr else set()
    return Claim(
        node_id=p.node_id,
        hostname=socket.gethostname(),
        dev=p.cfg.dev,
        netns=p.where,
        mac=format_mac(p.forwarder.mac),
        address=address,
        how="ipam" if address in leased else "static",
    )


def heard(p: Parts) -> bool:
    """Has a frame come from the network (or a remote MAC been heard)?"""
    if p.tunnel is None:
        return False
    p.tunnel.refresh_counters()
    return p.counters.tap_tx_frames > 0 or p.tunnel.remote_macs(time.monotonic()) > 0


async def tally(p: Parts) -> Tally:
    """What the stall watch compares: connections lost, messages dropped by
    our client, frames the kernel dropped at the TAP and frames read."""
    if p.tunnel is not None:
        p.tunnel.refresh_counters()
    c, dropped = p.counters, None
    if p.dev is not None:
        with contextlib.suppress(OSError):  # the device is going: said elsewhere
            dropped = (await p.dev.ctl.state(p.dev.index)).tx_dropped
    return Tally(c.nats_disconnects, c.drops[DropReason.SLOW_CONSUMER], dropped, c.tap_rx_frames)


def mtu_changed(p: Parts) -> None:
    """The TAP's MTU changed (ip link, or the network's definition)."""
    p.mtuw.mtu_changed()
    p.member_news.set()  # network show has it at once


def mtu(p: Parts) -> int:
    """The TAP's MTU as the kernel has it now."""
    return p.follower.state.mtu if p.follower else p.cfg.mtu


async def notify(p: Parts, node_id: str, data: bytes) -> None:
    """A notice to another node (core/control.py: our MTU check)."""
    if p.link is not None and p.link.is_connected:
        await p.link.nc.publish(notice_subject(p.scheme, node_id), data)


async def lookup_peers(p: Parts, timeout: float) -> list[NodeInfo]:
    link = p.link
    if link is None or not link.is_connected or link.inbox_refused:
        return []
    return await gather_peers(link.nc, p.scheme, timeout)


def apply(p: Parts, change: Change, new: Config) -> None:
    """Hand one live change (SIGHUP, core/settings.py) to the part that applies it."""
    tunnel, dev = p.tunnel, p.dev
    if change.name == "log_level":
        logging.getLogger().setLevel(new.log_level.upper())
    elif change.name == "storm_pps" and tunnel is not None:
        tunnel.set_storm(new.storm_pps)
    elif change.name in ("mac_ageing", "max_macs") and tunnel is not None:
        tunnel.set_switching(new.mac_ageing, new.max_macs)
    elif change.name == "mtu" and dev is not None:
        task = asyncio.get_running_loop().create_task(dev.ctl.set(dev.index, mtu=new.mtu))
        task.add_done_callback(_log_failure("mtu"))


def _log_failure(what: str) -> Callable[[asyncio.Task[None]], None]:
    def done(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("config reload: %s not applied: %s", what, task.exception())

    return done


def log_ready(p: Parts, st: Status, server: str) -> None:
    cfg = p.cfg
    log.info(
        "ready dev=%s mac=%s network=%s server=%s netns=%s mtu=%d mode=%s datapath=%s "
        "auth=%s version=%s",
        cfg.dev, st.mac, cfg.network, server, cfg.netns or "-", st.mtu, mode_of(cfg),
        p.dataplane, cfg.auth.describe(), __version__,
    )  # fmt: skip


async def respond(p: Parts, info: Callable[[], NodeInfo], st: Status, nc: Client) -> None:
    """Answer the control subjects, as the ADR-32 service vlan-nats-node
    (aio/ctlplane.py, aio/services.py) with this metadata."""
    meta = {"host": socket.gethostname(), "netns": p.where, "dev": p.cfg.dev, "mac": st.mac,
            "datapath": p.dataplane, "mode": mode_of(p.cfg), "version": __version__}  # fmt: skip
    await ControlResponder(p.scheme, p.node_id, info, p.mtuw.notice, meta).start(nc)


def apply_network(p: Parts, key: str, value: Any) -> None:
    """A setting the network's definition changed (aio/netwatch.py): the
    same parts apply it as a reload's change would."""
    old = getattr(p.cfg, key)
    p.cfg = dataclasses.replace(p.cfg, **{key: value})
    p.member_news.set()
    if key == "arp_routing":
        if p.tunnel is not None:
            p.tunnel.set_arp_routing(value)
        if p.subs is not None:
            p.subs.arp_routing(value)
        return
    apply(p, Change(key, old, value), p.cfg)


def member_doc(p: Parts, st: Status) -> dict[str, Any]:
    """What this node says of itself in its network's members bucket
    (with ``last_seen``, the time it is written)."""
    return {
        "node_id": p.node_id, "host": socket.gethostname(), "netns": p.where,
        "dev": p.cfg.dev, "mac": st.mac, "addresses": st.addresses, "mtu": st.mtu,
        "leased": [le["address"] for le in st.leases], "datapath": p.dataplane,
        "version": st.version, "revision": p.netwatch.revision, "problems": st.problems(),
    }  # fmt: skip


async def address(p: Parts, addr: AddressClient) -> None:
    """--address auto: ask once our member entry is written (the address
    service leases to live members only), or after MEMBER_FIRST anyway
    (without it the service's refusal says why)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(p.member_written.wait(), MEMBER_FIRST)
    await addr.run()


async def member(p: Parts, status: Callable[[], Status]) -> None:
    """Keep this node's entry in the members bucket (a task): written when
    it changes (looked at every second) and every MEMBER_REFRESH seconds,
    removed on a clean stop."""
    from .aio import netkv
    from .aio.leasestore import IpamError

    kv, key = None, ""
    failed, last = False, 0.0
    written: dict[str, Any] = {}
    try:
        while True:
            link = p.link
            try:
                if link is not None and link.is_connected:
                    kv = kv or await netkv.members(link.nc, p.scheme)
                    # Keyed by our MAC, which a per-node permission can name
                    # (docs/security.md); a new MAC moves the entry.
                    new = p.forwarder.mac.hex()
                    if key and key != new:
                        await kv.delete(key)
                    key = new
                    doc = member_doc(p, status())
                    if doc != written or time.monotonic() - last >= netkv.MEMBER_REFRESH:
                        await kv.put(key, json.dumps({**doc, "last_seen": time.time()}).encode())
                        written, last = doc, time.monotonic()
                        p.member_written.set()
                    failed = False
            except (IpamError, nats.errors.Error, TimeoutError) as e:
                kv, written = None, {}
                if not failed:
                    log.info("network member entry not written (%s); trying again", e)
                failed = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(p.member_news.wait(), 1.0)
            p.member_news.clear()
    finally:
        if kv is not None and key:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(kv.delete(key), 2.0)
