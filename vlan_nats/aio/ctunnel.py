"""The C datapath behind the tunnel's interface: the control plane's side.

csrc/vn_datapath.c moves the frames on its own threads and its own NATS
connection (the *data* connection); this module programs it with what
core/ decides and answers what it cannot decide alone:

    programming   our MAC, the subject prefixes (core.subjects), the egress
                  and ingress tables (core.forwarding), bridge mode and the
                  MAC table's bounds (core.switching), the storm bucket, the
                  frame limit, sealing keys, subscriptions
    upcalls       an eventfd the loop watches (core.events.Event): a new
                  source MAC behind our bridge (core.switching.MacTable
                  decides: serve it, or over the cap; its subscription is
                  sent before the verdict releases its held frames), a MAC
                  that moved, a duplicate MAC, refused frames worth a log
                  line, the data connection's state
    counters      read from C atomics into the same Counters as the python
                  datapath's, when status, metrics or SIGUSR1 ask

It offers what aio/tunnel.py offers (start, stop, set_mtu, set_mac,
set_keys, expire, ...) and what aio/natslink.py offers the subscription
manager (set_subjects, add_subject, subjects), so the daemon wires either.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import logging
import os
from collections.abc import Callable

from ..cdatapath import CDatapath, ConnOptions, COpener, CSealer
from ..core.arp import REPEAT_WINDOW, arp_table
from ..core.counters import Counters, DropReason
from ..core.events import Event
from ..core.forwarding import Forwarder, egress_table, ingress_table
from ..core.frames import max_frame_len
from ..core.seal import DEFAULT_SKEW, MAX_SESSIONS, SESSION_LEN, key_id
from ..core.subjects import SubjectScheme
from ..core.switching import TokenBucket, remote_limit
from ..errors import TapError
from ..ratelog import RateLimitedLog
from .cmacs import CMacs
from .droplog import DropLog
from .natslink import Refusals, describe_error, is_auth_error
from .priority import Priority

REOPEN_FIRST, REOPEN_MAX = 1.0, 30.0  # s: a closed data connection is made anew

log = logging.getLogger(__name__)


class CTunnel:
    def __init__(
        self,
        tap_fd: int,
        conn: ConnOptions,
        scheme: SubjectScheme,
        forwarder: Forwarder,
        counters: Counters,
        mtu: int,
        storm: TokenBucket | None = None,
        on_events: Callable[[], None] | None = None,
        on_dup_mac: Callable[[str], None] | None = None,
        on_oversize: Callable[[bytes | None, int], None] | None = None,
        arp_routing: bool = False,
        make_dp: Callable[[int, bool, int], CDatapath] = CDatapath,
        priority: Priority | None = None,
    ) -> None:
        self.conn = conn
        self.scheme = scheme
        self.forwarder = forwarder
        self.counters = counters
        self.mtu, self.priority = mtu, priority  # --datapath-nice: the datapath thread takes it
        self._on_events = on_events
        self._on_dup_mac = on_dup_mac
        self._on_oversize = on_oversize  # (source MAC, size): a frame above our MTU
        self._loop = asyncio.get_running_loop()
        self.failed: asyncio.Future[BaseException] = self._loop.create_future()
        self.dp = make_dp(tap_fd, scheme.compat, max_frame_len(mtu))  # a fake in unit tests
        self.macs = CMacs(self.dp, forwarder, scheme, self._subscribe)
        self.dp.set_mac(forwarder.mac)
        self.dp.set_subjects(scheme.unicast_prefix, scheme.multicast_prefix, scheme.broadcast,
                             scheme.flood, scheme.compat)  # fmt: skip
        self.dp.set_ingress(ingress_table(forwarder.bridge))
        self.dp.set_egress(egress_table(scheme.compat))
        self.set_arp_routing(arp_routing)
        t = forwarder.table
        self.dp.set_bridge(forwarder.bridge, t.ageing, t.max_macs, remote_limit(t.max_macs))
        storm = storm or TokenBucket(0)
        self.dp.set_storm(storm.rate, storm.burst)
        self._opener: COpener | None = None
        self._key_ids: list[int] = []
        self._subs: set[str] = set()
        self._wanted: frozenset[str] = frozenset()
        self.connected = asyncio.Event()
        self.last_error: str | None = None
        self._drop_log = DropLog()
        self._errlog = RateLimitedLog(log)
        self.refusals = Refusals()
        self._taplog, self._lostlog = RateLimitedLog(log), RateLimitedLog(log)
        self._events_lost = 0
        self._started = False
        self._flushes: set[asyncio.Future[None]] = set()  # _off_loop calls in flight
        # libnats gives a connection up for good (the same auth error twice on
        # a server): it is made anew (_keep_open).
        self._closelog = RateLimitedLog(log, interval=30.0)
        self._reopening: asyncio.Task[None] | None = None
        self._busy = False
        self._closed = asyncio.Event()  # libnats closed the connection (again)
        self._new_secrets = asyncio.Event()
        # The credentials for the next connection (token/creds files change).
        self._secrets: dict[str, str] = {}

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> None:
        """Connect the data connection (libnats retries in the background
        until a server answers) and start the threads."""
        self.dp.connect(self.conn)
        self._start_thread()
        self._started = True
        self._loop.add_reader(self.dp.event_fd, self._on_event_fd)
        log.info("datapath c: data connection servers=%s", ",".join(self.conn.servers))

    def _start_thread(self) -> None:
        if self.priority is not None:
            self.dp.set_nice(self.priority.wanted)
        self.dp.start()
        self._took_priority()

    def _took_priority(self) -> None:
        """The datapath thread (started anew by a reconnect too) has its
        priority, or says why not."""
        if self.priority is not None and self.priority.wanted:
            self.priority.took(self.dp.nice_error(), "the C datapath's thread")

    async def stop(self) -> None:
        if not self._started:
            self.dp.close()
            return
        self._started = False
        if self._reopening is not None:
            self._reopening.cancel()
            await asyncio.gather(self._reopening, return_exceptions=True)
        if self._flushes:  # they use the datapath: not freed under them
            await asyncio.wait(self._flushes)
        self._loop.remove_reader(self.dp.event_fd)
        self.dp.read_counters(self.counters)
        # Joins the threads and libnats' own: a moment, off the loop.
        await asyncio.to_thread(self.dp.close)

    # -- the tunnel's interface --------------------------------------------
    def set_storm(self, pps: float) -> None:
        storm = TokenBucket(pps)
        self.dp.set_storm(storm.rate, storm.burst)

    def set_blocked(self, blocked: bool) -> None:
        self.dp.set_blocked(blocked)

    def set_arp_routing(self, on: bool) -> None:
        """Routed ARP on or off ("" turns it off in C; never in compat mode)."""
        prefix = self.scheme.arp_prefix if on and not self.scheme.compat else ""
        self.dp.set_arp(prefix, arp_table(), REPEAT_WINDOW)

    def set_switching(self, ageing: float, max_macs: int) -> None:
        t = self.forwarder.table
        t.ageing, t.max_macs = ageing, max_macs
        self.dp.set_bridge(self.forwarder.bridge, ageing, max_macs, remote_limit(max_macs))

    def set_mtu(self, mtu: int) -> None:
        self.mtu = mtu
        self.dp.set_max_frame(max_frame_len(mtu))

    def set_mac(self, mac: bytes) -> None:
        self.dp.set_mac(mac)

    def set_secrets(
        self, token: str | None = None, jwt: str | None = None, seed: str | None = None
    ) -> None:
        """New credentials for the data connection's next attempts."""
        self.dp.set_secrets(token, jwt, seed)
        self._secrets.update({k: v for k, v in (("token", token), ("jwt", jwt), ("seed", seed))
                              if v})  # fmt: skip
        self._new_secrets.set()  # a closed connection tries them at once

    def _reopen(self) -> None:
        """libnats closed the data connection for good: make it anew."""
        self._closed.set()
        if self._started and (self._reopening is None or self._reopening.done()):
            self._reopening = self._loop.create_task(self._keep_open(), name="data-reopen")

    async def _keep_open(self) -> None:
        """Make the connection anew (with the credentials known now) until
        it connects: after 1 s, doubling up to REOPEN_MAX, at once when the
        credentials change."""
        wait = REOPEN_FIRST
        while self._started and not self.connected.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new_secrets.wait(), wait)
            self._new_secrets.clear()
            wait = min(wait * 2, REOPEN_MAX)
            if not self._started:
                return
            c, new = self.conn, self._secrets
            conn = dataclasses.replace(
                c,
                token=new.get("token", c.token),
                jwt=new.get("jwt", c.jwt),
                seed=new.get("seed", c.seed),
            )
            self._closed.clear()
            self._busy = True  # nothing else touches the connection meanwhile
            try:
                await self._off_loop(self.dp.connect, conn, True)
            except OSError as e:
                log.error("data connection cannot be made anew error=%s; trying again", e)
                continue
            finally:
                self._busy = False
            self._took_priority()
            self._subs.clear()
            for subject in sorted(self._wanted):
                self._subscribe(subject)
            closed = asyncio.ensure_future(self._closed.wait())
            up = asyncio.ensure_future(self.connected.wait())
            await asyncio.wait({closed, up}, return_when=asyncio.FIRST_COMPLETED)
            closed.cancel()
            up.cancel()
        if self.connected.is_set():
            log.info("data connection made anew servers=%s", ",".join(self.conn.servers))

    def set_keys(self, key: bytes, new_session: bool, accept: list[bytes]) -> None:
        if new_session or not self._key_ids:
            self.dp.set_sealer(CSealer(key, os.urandom(SESSION_LEN)))
        if self._opener is None:
            self._opener = COpener(accept, DEFAULT_SKEW, MAX_SESSIONS)
            self.dp.set_opener(self._opener)
        else:
            self._opener.set_keys(accept)
        self._key_ids = sorted({key_id(k) for k in accept})

    def sealing_sessions(self) -> int:
        return self.dp.opener_sessions()

    def refresh_counters(self) -> None:
        self.dp.read_counters(self.counters)

    def expire(self, now: float) -> list[bytes]:
        gone, missed = self.macs.expire(now)
        if missed and self._on_events is not None:
            self._on_events()
        return gone

    def remote_macs(self, now: float) -> int:
        return self.dp.remote_count(self.forwarder.table.ageing)

    def subject_count(self) -> int:
        return len(self._subs)

    def data_connection(self) -> dict[str, object] | None:
        return {"server": self.server, "connected": self.is_connected, "error": self.last_error}

    async def wait_connected(self) -> None:
        if not self.connected.is_set():
            log.info("waiting for the data connection")
            await self.connected.wait()

    # -- what the subscription manager needs (as of NatsLink) ---------------
    @property
    def is_connected(self) -> bool:
        return self.connected.is_set()

    @property
    def server(self) -> str:
        if self._busy:  # the connection is being made anew off the loop
            return "-"
        up, url = self.dp.connected()
        return url if up and url else "-"

    @property
    def subjects(self) -> frozenset[str]:
        return frozenset(self._subs)

    async def set_subjects(self, wanted: frozenset[str]) -> None:
        self._wanted = wanted
        if self._busy:
            return  # the connection made anew subscribes to what is wanted then
        for subject in sorted(self._subs - wanted):
            self.dp.unsubscribe(subject)
            self._subs.discard(subject)
        for subject in sorted(wanted - self._subs):
            self._subscribe(subject)
        await self._barrier()

    async def _barrier(self) -> None:
        """Wait until the server holds our SUBs, as NatsLink does, so that
        the ready line means the others' frames reach us.  Not connected:
        libnats sends them on connect."""
        if not self._started or not self.connected.is_set():
            return
        try:
            await self._off_loop(self.dp.flush, 5.0)
        except OSError as e:
            log.debug("data connection: subscription flush deferred error=%s", e)

    async def _off_loop(self, fn: Callable[..., None], *args: object) -> None:
        """``fn(*args)`` on a thread; stop() waits for such calls before it
        frees the datapath, even when their awaiter was cancelled."""
        call = asyncio.ensure_future(asyncio.to_thread(fn, *args))
        self._flushes.add(call)
        call.add_done_callback(self._flushes.discard)
        await asyncio.shield(call)

    async def add_subject(self, subject: str) -> None:
        self._wanted = self._wanted | {subject}
        self._subscribe(subject)

    def _subscribe(self, subject: str) -> None:
        if self._busy:
            return  # subscribed once the connection is made anew
        try:
            self.dp.subscribe(subject)
        except OSError as e:
            self._errlog.warning("data connection: cannot subscribe subject=%s error=%s",
                                 subject, e)  # fmt: skip
            return
        self._subs.add(subject)

    # -- events --------------------------------------------------------------
    def _on_event_fd(self) -> None:
        learned = decided = False
        for ev in self.dp.events():
            kind = Event(ev.kind)
            if kind is Event.NEW_LOCAL:
                self.macs.new_local(ev.mac, bool(ev.value))
                learned = decided = True
            elif kind is Event.MOVED_REMOTE:
                learned |= self.macs.moved_remote(ev.mac)
            elif kind is Event.DUP_MAC:
                if self._on_dup_mac is not None:
                    self._on_dup_mac(ev.text)
            elif kind is Event.DROP:
                self._dropped(DropReason(ev.reason), ev.value, ev.text, ev.mac)
            elif kind is Event.TAP_ERROR:
                self._tap_error(ev.reason)
            else:
                self._connection_event(kind, ev.text)
        if decided:
            self.dp.verdict()  # their held frames go
        if learned and self.forwarder.events and self._on_events is not None:
            self._on_events()
        lost = self.dp.counter("events_lost")
        if lost > self._events_lost:
            # Upcalls or connection news the control plane never saw.
            self._lostlog.warning(
                "datapath events lost total=%d: the control plane fell behind", lost
            )
            self._events_lost = lost

    def _connection_event(self, kind: Event, text: str) -> None:
        if kind in (Event.CONNECTED, Event.RECONNECTED):
            self.connected.set()
            self.last_error = None
            what = "connected" if kind is Event.CONNECTED else "reconnected"
            log.info("data connection %s server=%s", what, text)
        elif kind is Event.DISCONNECTED:
            self.connected.clear()
            log.warning("data connection lost; frames are dropped until reconnected")
        elif kind is Event.CLOSED:
            self.connected.clear()
            self.last_error = (None if self._busy else self.dp.error()) or "closed"
            self._closelog.log(logging.ERROR, "data connection closed error=%r; making it "
                               "anew (retrying)", self.last_error)  # fmt: skip
            self._reopen()
        elif kind is Event.ERROR and not self.refusals.handle(text):
            why = describe_error(Exception(text))
            self.last_error = why
            level = logging.ERROR if is_auth_error(why) else logging.WARNING
            self._errlog.log(level, "data connection problem error=%r", why)

    def _tap_error(self, code: int) -> None:
        err = TapError(code, f"tap read: {os.strerror(code)}")
        if code in (errno.EBADFD, errno.EBADF, errno.ENODEV, errno.EIO):
            if not self.failed.done():
                self.failed.set_result(err)
        else:
            self._taplog.warning("tap read error=%s", err)

    def _dropped(self, reason: DropReason, value: int, subject: str, mac: bytes) -> None:
        self._drop_log.event(reason, value, subject, self.mtu, self._key_ids)
        if reason is DropReason.OVERSIZE and self._on_oversize is not None:
            self._on_oversize(mac if any(mac) else None, value)
