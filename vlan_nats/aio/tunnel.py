"""The tunnel loop: TAP <-> NATS.

TAP to NATS: the TAP fd turns readable -> the pump drains it with one C
call per batch (frames land in reused slots) -> per frame the subject is
looked up by destination MAC (cached) and the wire header is written in
place before the frame -> publish; nats-py coalesces the socket writes and
makes publish wait when its outbound buffer is full, which stops TAP reads
(the kernel queue then drops, as a switch port would).

NATS to TAP: each message is checked (wire format, no echo, addressed to
us), copied into the write batch, and the batch is written with one C call
per loop turn.  Nothing here logs per frame; drops are counted.

Switching (core.forwarding): source MACs are learned both ways; what to
publish is egress_rules' entry for the destination's class (unicast to a
destination not seen on the network lately also to the flood subject;
broadcast, multicast and those flooded copies pass a storm limiter).
Learning events are handed to ``on_events`` once per batch.

Sealing (core.seal): with a ``sealer`` every message leaves sealed (each
flooded copy sealed for its own subject); with an ``opener`` only sealed
messages are taken, opened, and then handled as plain ones.  Either can be
swapped at any time (key reload).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import time
from collections.abc import Awaitable, Callable

from nats.aio.msg import Msg

from ..core import arp, wire
from ..core.counters import Counters, DropReason
from ..core.forwarding import (
    FLOOD,
    METERED,
    OUT_GROUP,
    OUT_KNOWN,
    OUT_LOCAL,
    OUT_UNKNOWN,
    SEND,
    Forwarder,
    egress_rules,
)
from ..core.frames import ETH_HLEN, FrameKind, max_frame_len
from ..core.mac import BROADCAST
from ..core.seal import SESSION_LEN, Opener, Sealer
from ..core.subjects import SubjectScheme
from ..core.switching import TokenBucket
from ..crypto import aes_gcm
from ..errors import TapError
from ..fastpath import FrameReader, FrameWriter, Tap
from .droplog import DropLog
from .egress import publisher, wire_payload
from .natslink import NatsLink

log = logging.getLogger(__name__)

_VNET = wire.VNET_HDR_LEN
_HDR = wire.HEADER_LEN
_MIN_READ = _VNET + ETH_HLEN
_UNICAST, _BROADCAST, _MULTICAST = FrameKind.UNICAST, FrameKind.BROADCAST, FrameKind.MULTICAST


class Tunnel:
    def __init__(
        self,
        tap: Tap,
        link: NatsLink,
        scheme: SubjectScheme,
        forwarder: Forwarder,
        counters: Counters,
        mtu: int,
        batch: int = 64,
        storm: TokenBucket | None = None,
        on_events: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sealer: Sealer | None = None,
        opener: Opener | None = None,
        on_new_local: Callable[[bytes], Awaitable[None]] | None = None,
        wall_clock: Callable[[], float] = time.time,
        on_dup_mac: Callable[[str], None] | None = None,
        on_oversize: Callable[[bytes | None, int], None] | None = None,
        arp_memory: arp.RepeatMemory | None = None,
    ) -> None:
        self.tap = tap
        self.link = link
        self.scheme = scheme
        self.forwarder = forwarder
        self.counters = counters
        self.mtu = mtu
        self.max_frame = max_frame_len(mtu)
        self._compat = scheme.compat
        self._ingress = forwarder.ingress
        self._flood = scheme.flood
        self._egress = egress_rules(scheme.compat)
        self.storm = storm if storm is not None else TokenBucket(0)
        self._on_events, self._clock, self.sealer = on_events, clock, sealer
        self._on_new_local = on_new_local
        self._on_dup_mac = on_dup_mac  # (subject): a frame came back with our source MAC
        self._on_oversize = on_oversize  # (source MAC, size): a frame above our MTU
        self.opener = opener
        self._arp = arp_memory  # routed ARP (None: off)
        self.blocked = False  # a sealed network and no key here: forward nothing
        self._wall, self._drop_log = wall_clock, DropLog()
        self.reader = FrameReader(tap.fd, batch)
        self.writer = FrameWriter(tap.fd)
        self._loop = asyncio.get_running_loop()
        self._readable = asyncio.Event()
        self._flush_scheduled = False
        self._pump_task: asyncio.Task[None] | None = None
        self.failed: asyncio.Future[BaseException] = self._loop.create_future()

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> None:
        self.link.deliver_to(self.on_msg)
        self._loop.add_reader(self.tap.fd, self._on_readable)
        self._pump_task = self._loop.create_task(self._pump(), name="tap-pump")
        self._pump_task.add_done_callback(self._pump_done)

    async def stop(self) -> None:
        self._loop.remove_reader(self.tap.fd)
        if self._pump_task is not None:
            self._pump_task.cancel()
            try:
                await self._pump_task
            except (asyncio.CancelledError, Exception):
                pass
        self._flush_tap()

    def set_storm(self, pps: float) -> None:
        """A new storm rate (SIGHUP), used from the next batch on."""
        self.storm = TokenBucket(pps, now=self._clock())

    def set_blocked(self, blocked: bool) -> None:
        self.blocked = blocked

    def set_arp_routing(self, on: bool) -> None:
        self._arp = (self._arp or arp.RepeatMemory()) if on else None

    def set_switching(self, ageing: float, max_macs: int) -> None:
        self.forwarder.table.ageing, self.forwarder.table.max_macs = ageing, max_macs

    def set_mtu(self, mtu: int) -> None:
        self.mtu = mtu
        self.max_frame = max_frame_len(mtu)

    def set_mac(self, mac: bytes) -> None:
        """Our MAC changed: the forwarder (shared with the control plane)
        has it already."""

    def set_keys(self, key: bytes, new_session: bool, accept: list[bytes]) -> None:
        """Seal with ``key`` (a new sender session if asked, or if none
        yet), open what ``accept`` sealed."""
        if self.sealer is None or new_session:
            self.sealer = Sealer(key, os.urandom(SESSION_LEN), self._wall, aead=aes_gcm)
        if self.opener is None:
            self.opener = Opener(accept, aead=aes_gcm)
        else:
            self.opener.set_keys(accept)

    def sealing_sessions(self) -> int:
        return self.opener.sessions if self.opener is not None else 0

    def refresh_counters(self) -> None:
        """The counters are ours, always current."""

    def set_secrets(
        self, token: str | None = None, jwt: str | None = None, seed: str | None = None
    ) -> None:
        """Frames share the control connection, which reads its secrets itself."""

    def expire(self, now: float) -> list[bytes]:
        """Age the MAC tables; returns the local MACs forgotten."""
        return self.forwarder.table.expire(now)

    def remote_macs(self, now: float) -> int:
        t = self.forwarder.table
        return sum(1 for seen in t.remote.values() if now - seen <= t.ageing)

    def subject_count(self) -> int:
        return len(self.link.subjects)

    def data_connection(self) -> dict[str, object] | None:
        return None  # frames go over the control connection (NatsLink)

    async def wait_connected(self) -> None:
        return None

    def _pump_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() and not self.failed.done():
            self.failed.set_result(task.exception())  # type: ignore[arg-type]

    # -- TAP -> NATS -------------------------------------------------------
    def _on_readable(self) -> None:
        # Level-triggered: stop watching until the pump has drained the fd.
        self._loop.remove_reader(self.tap.fd)
        self._readable.set()

    async def _pump(self) -> None:
        reader = self.reader
        batch, lens = reader.batch, reader.lens
        c = self.counters
        link = self.link
        while True:
            await self._readable.wait()
            self._readable.clear()
            while True:
                n = self._read()
                if n == 0:
                    break
                c.tap_rx_frames += n
                if link.is_connected and not self.blocked:
                    await self._publish_batch(n)
                else:
                    why = DropReason.NO_KEY if self.blocked else DropReason.DISCONNECTED
                    c.drops[why] += n
                    c.tap_rx_bytes += sum(lens[i] for i in range(n)) - n * _VNET
                if n < batch:
                    break  # drained: the last read hit EAGAIN
                # Every full batch yields, published or dropped: the receive
                # side, and when NATS is down reconnecting, status and
                # netlink, need the loop.
                await asyncio.sleep(0)
            self._loop.add_reader(self.tap.fd, self._on_readable)

    def _read(self) -> int:
        try:
            return self.reader.read()
        except TapError as e:
            if e.errno in (errno.EBADFD, errno.EBADF, errno.ENODEV):
                raise  # the device is gone: the daemon says which way
            log.warning("tap read error=%s", e)
            return 0

    async def _bridge_local(self, src: bytes, dst: bytes, now: float) -> bool:
        """Bridge mode: learn ``src`` behind our bridge; True if the frame is
        for a host behind it (the bridge delivered it already)."""
        fwd = self.forwarder
        known = src in fwd.table.local
        fwd.learn_local(src, now)
        if not known and src in fwd.table.local and self._on_new_local:
            # Subscribe before the frame that reveals the MAC leaves: a peer
            # that learns it from this frame answers to a subject we hold.
            await self._on_new_local(src)
        return dst in fwd.table.local

    async def _publish_batch(self, n: int) -> None:
        """Publish the ``n`` frames in the read slots as core.forwarding's
        egress rules say: one call per batch."""
        reader, c = self.reader, self.counters
        view, slot, lens = reader.view, reader.slot, reader.lens
        route, rules, flood, compat = self.scheme.route, self._egress, self._flood, self._compat
        publish = publisher(self.link.nc.publish, self.sealer)
        drops, by_kind, bytes_by_kind = c.drops, c.tx_by_kind, c.tx_bytes_by_kind
        fwd = self.forwarder
        bridge, allow, unicast = fwd.bridge, self.storm.allow, FrameKind.UNICAST
        nbytes = sent = 0  # added to the counters once per batch
        now = self._clock()
        for i in range(n):
            base = i * slot
            ln = lens[i]
            nbytes += ln
            if ln < _MIN_READ:
                drops[DropReason.TAP_RUNT] += 1
                continue
            f = base + _HDR + _VNET
            dst = bytes(view[f : f + 6])
            payload = wire_payload(view, base, ln, compat, c)
            subject, kind = route(dst)
            if kind is _BROADCAST and view[f + 12 : f + 14] == arp.ETH_P_ARP:
                subject = self._arp_subject(view, f, now) or subject
            if bridge and await self._bridge_local(bytes(view[f + 6 : f + 12]), dst, now):
                cls = OUT_LOCAL
            elif kind is not unicast:
                cls = OUT_GROUP
            else:
                cls = OUT_UNKNOWN if fwd.unknown(dst, now) else OUT_KNOWN
            bits, drop = rules[2 * cls]
            if bits & METERED and not allow(now):
                bits, drop = rules[2 * cls + 1]
            if drop is not None:
                drops[drop] += 1
            if not bits & SEND:
                continue
            try:
                # nats-py copies the payload into its PUB command before it
                # can suspend, so the slot may be reused.
                await publish(subject, payload)
                if bits & FLOOD:
                    await publish(flood, payload)
                    c.flooded += 1
            except Exception:
                drops[DropReason.PUBLISH_ERROR] += 1
                continue
            sent += 1
            by_kind[kind] += 1
            bytes_by_kind[kind] += ln - _VNET
        c.tap_rx_bytes += nbytes - n * _VNET
        c.nats_tx_msgs += sent
        if fwd.events and self._on_events is not None:
            self._on_events()

    def _arp_subject(self, view: memoryview, f: int, now: float) -> str | None:
        """A broadcast ARP frame: its target's subject when core/arp.py
        routes it (counted either way)."""
        target = arp.route(view, f, self._arp, now) if self._arp is not None else None
        if target is None:
            self.counters.arp_broadcast += 1
            return None
        self.counters.arp_routed += 1
        return self.scheme.arp(target)

    # -- NATS -> TAP -------------------------------------------------------
    def _open(self, msg: Msg, opener: Opener) -> bytes | None:
        """A sealed network: the opened message, or None (counted, logged)."""
        data = msg.data
        if len(data) < 2 or not data[1] & wire.FLAG_SEALED:
            self.counters.drops[DropReason.UNSEALED] += 1
            self._drop_log.unsealed(msg.subject)
            return None
        opened = opener.open(data, msg.subject, self._wall())
        if isinstance(opened, DropReason):
            self.counters.drops[opened] += 1
            key = data[2] if len(data) > 2 else None
            self._drop_log.sealed(opened, key, opener.key_ids, msg.subject, opener.last_stale,
                                  opener.skew)  # fmt: skip
            return None
        return opened

    def _refused(self, reason: DropReason, subject: str, data: bytes) -> None:
        self.counters.drops[reason] += 1
        if reason is DropReason.DUP_MAC and self._on_dup_mac is not None:
            self._on_dup_mac(subject)
        elif reason is DropReason.SEALED_NO_KEY:
            self._drop_log.no_key(subject)
        elif reason is DropReason.OVERSIZE:
            self._drop_log.oversize(len(data), self.mtu, subject)
            if self._on_oversize is not None:
                self._on_oversize(wire.source_mac(data, self._compat), len(data))

    async def on_msg(self, msg: Msg) -> None:
        c = self.counters
        c.nats_rx_msgs += 1
        if self.blocked:
            c.drops[DropReason.NO_KEY] += 1
            return
        data: bytes | None = msg.data
        if self.opener is not None:
            data = self._open(msg, self.opener)
            if data is None:
                return
        assert data is not None
        if self._compat:
            reason = wire.check_raw(data, self.max_frame)
            off = start = 0
            vnet = False
        else:
            reason = wire.check(data, self.max_frame)
            vnet = reason is None and bool(data[1] & wire.FLAG_VNET)
            start = _HDR
            off = _HDR + _VNET if vnet else _HDR
        if reason is None:
            reason = self._ingress(data, off, self._clock(), msg.subject == self._flood)
            if self.forwarder.events and self._on_events is not None:
                self._on_events()
        if reason is not None:
            self._refused(reason, msg.subject, data)
            return
        if data[off] & 0x01:
            kind = _BROADCAST if data.startswith(BROADCAST, off) else _MULTICAST
        else:
            kind = _UNICAST
        c.rx_by_kind[kind] += 1
        c.rx_bytes_by_kind[kind] += len(data) - off
        mv = memoryview(data)
        if not self.writer.add(mv, start, vnet):
            self._flush_tap()
            self.writer.add(mv, start, vnet)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush_tap)

    def _flush_tap(self) -> None:
        self._flush_scheduled = False
        w = self.writer
        nbytes = w.pending_bytes() - w.count * _VNET
        ok, failures = w.flush()
        c = self.counters
        c.tap_tx_frames += ok
        if not failures:
            c.tap_tx_bytes += nbytes
            return
        for err in failures:  # bytes of a partly failed batch are not counted
            c.drops[DropReason.TAP_DOWN if err == errno.EIO else DropReason.TAP_WRITE] += 1
