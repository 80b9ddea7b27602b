"""The NATS connection of one daemon (nats-py).

- ``no_echo``: the server never hands us our own messages.
- Reconnects forever over all given servers and the cluster members the
  server tells us about; nats-py restores subscriptions after a reconnect.
- While disconnected, publishing is refused by the caller (the tunnel
  counts the frame as dropped): no unbounded buffering of frames.
- Subscriptions are a desired set; ``set_subjects`` reconciles it.
- Connection errors are logged rate-limited, never raised.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import SlowConsumerError

from ..core.counters import Counters, DropReason
from ..ratelog import RateLimitedLog

log = logging.getLogger(__name__)
# nats-server: Permissions Violation for Subscription to "vlan.0.u.0200..."
_PERMISSION_RE = re.compile(
    r"Permissions Violation for (Subscription|Publish) to \"?([^\"\s']+)", re.I
)

# Per-subscription queue in nats-py (messages read from the socket, not yet
# handed to us).  Above what a TCP flow keeps in flight (a window of a few
# MB), so a flow is not starved; bounded, so memory is.  (Under a flood the
# backlog builds in nats-server rather than here: see docs/reliability.md.)
PENDING_MSGS_LIMIT = 8192
PENDING_BYTES_LIMIT = 16 * 1024 * 1024
# Outbound buffer before nats-py makes publish() wait for the socket: this
# is the TAP reader's back-pressure.
OUTBOUND_PENDING = 4 * 1024 * 1024
# A server that dies closes our socket and we fail over at once (~0.1 s).
# One that hangs (or a path that blackholes) is only noticed by unanswered
# PINGs: declared stale after (MAX_OUTSTANDING_PINGS + 1) * PING_INTERVAL,
# i.e. within ~3 s.  Cost: one PING per second per daemon, and a needless
# reconnect if a PONG waits > 3 s behind a backlog, when the server is
# about to cut us off as a slow consumer anyway.  nats-py's default, 120 s
# x 2, would stall a LAN for minutes; 5 s x 2 measured 13 s here.
PING_INTERVAL = 1
MAX_OUTSTANDING_PINGS = 2
# An authorization error is logged at ERROR the first time, then at most
# this often while it lasts (the daemon keeps retrying, reading the token,
# password or creds file again at each attempt: a fixed file is used at once).
AUTH_LOG_INTERVAL = 30.0


def describe_error(e: BaseException) -> str:
    """A short, stable text for ``status`` and metrics: "authorization
    violation", "tls: certificate verify failed", "connection refused"."""
    if isinstance(e, nats.errors.AuthorizationError):
        return "authorization violation"
    if isinstance(e, ssl.SSLError):
        # Not every SSLError has a reason (one made without OpenSSL's help).
        reason = (
            getattr(e, "verify_message", None) or getattr(e, "reason", None) or e.strerror or str(e)
        )
        return f"tls: {reason}".lower()
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, (asyncio.TimeoutError, TimeoutError)):
        return "timeout"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror.lower()
    text = (str(e) or type(e).__name__).strip()
    text = text.removeprefix("nats: ").strip("'\" ")
    return text.lower()


def is_auth_error(text: str) -> bool:
    return "authorization" in text or "authentication" in text or "user credentials" in text


class Refusals:
    """Permission violations a server reports, said once per subject (it
    refuses again on every reconnect); shared by both connections."""

    def __init__(self) -> None:
        self._refused: set[str] = set()
        self._perm_log = RateLimitedLog(log)
        self.inbox_refused = False

    def handle(self, text: str, inbox_prefix: str | None = None) -> bool:
        """Log ``text`` if it is a permission violation; True if it was."""
        m = _PERMISSION_RE.search(text)
        if m:
            what, subject = m.group(1).lower(), m.group(2)
            if (
                what == "subscription"
                and inbox_prefix
                and subject.lower().startswith(inbox_prefix.lower())
            ):
                # Each request has its own inbox subject: say it once, then
                # stop asking (DuplicateMac checks inbox_refused).
                if not self.inbox_refused:
                    self.inbox_refused = True
                    log.warning(
                        "nats refused our reply inbox subject=%s.> (server permissions): "
                        "duplicate-MAC reports cannot name the other node; allow it "
                        "(docs/security.md)",
                        inbox_prefix,
                    )
                return True
            if what == "subscription":
                if subject not in self._refused:
                    self._refused.add(subject)
                    log.error(
                        "nats refused subscription subject=%s (server permissions); "
                        "running without it",
                        subject,
                    )
            else:
                self._perm_log.warning("nats refused %s subject=%s", what, subject)
            return True
        if "permissions violation" in text.lower():
            self._perm_log.warning("nats refused: %s", text)
            return True
        return False


class NatsLink:
    def __init__(
        self,
        servers: tuple[str, ...],
        name: str,
        counters: Counters,
        on_msg: Callable[[Msg], Awaitable[None]] | None = None,
        reconnect_wait: float = 1.0,
        options: dict[str, Any] | None = None,
        inbox_prefix: str = "_INBOX",
    ) -> None:
        self.servers = servers
        self.name = name
        self.counters = counters
        self.on_msg = on_msg  # the subscriptions' handler (deliver_to)
        self.reconnect_wait = reconnect_wait
        self.options = options or {}  # authentication and TLS (auth.connect_options)
        # Replies to our own control requests (duplicate-MAC lookups) come
        # here; per-node permissions can allow just this (docs/security.md).
        self.inbox_prefix = inbox_prefix
        self.inbox_refused = False
        self.nc: Client = Client()
        self._subs: dict[str, Any] = {}
        self._wanted: frozenset[str] = frozenset()
        self._subscribing: set[str] = set()
        self._sync_lock = asyncio.Lock()
        self._errlog = RateLimitedLog(log)
        self._bug_log = RateLimitedLog(log)
        self.refusals = Refusals()
        self._auth_log = RateLimitedLog(log, interval=AUTH_LOG_INTERVAL)
        # The last connection error since the last successful connect.
        self.last_error: str | None = None
        self.connected = asyncio.Event()
        self._closing = False


    def deliver_to(self, handler: Callable[[Msg], Awaitable[None]] | None) -> None:
        """Where the frames' subscriptions deliver (the python datapath, as
        it starts): before the first set_subjects."""
        self.on_msg = handler
    @property
    def is_connected(self) -> bool:
        return self.nc.is_connected

    @property
    def server(self) -> str:
        url = self.nc.connected_url
        return url.geturl() if url else "-"

    async def connect(self) -> None:
        """Connect, retrying forever (logged, rate-limited) until it works."""
        await self.nc.connect(
            servers=list(self.servers),
            name=self.name,
            no_echo=True,
            allow_reconnect=True,
            max_reconnect_attempts=-1,
            reconnect_time_wait=self.reconnect_wait,  # type: ignore[arg-type]
            connect_timeout=2,
            ping_interval=PING_INTERVAL,
            max_outstanding_pings=MAX_OUTSTANDING_PINGS,
            pending_size=OUTBOUND_PENDING,
            error_cb=self._error_cb,
            disconnected_cb=self._disconnected_cb,
            reconnected_cb=self._reconnected_cb,
            closed_cb=self._closed_cb,
            # Our subjects are built from validated parts (config.py,
            # subjects.py); nats-py would re-check each one per frame.
            skip_subject_validation=True,
            inbox_prefix=self.inbox_prefix,
            **self.options,
        )
        self.connected.set()
        self.last_error = None
        log.info("nats connected server=%s", self.server)

    async def _error_cb(self, e: Exception) -> None:
        if isinstance(e, SlowConsumerError):
            self.counters.drop(DropReason.SLOW_CONSUMER)
            return
        if not isinstance(e, (nats.errors.Error, OSError, asyncio.TimeoutError)):
            # nats-py hands exceptions raised in our subscription callback
            # here too: a bug of ours, not a connection problem.
            self._bug_log.warning("message handler failed error=%r", e)
            return
        text = str(e) or type(e).__name__
        if self.refusals.handle(text, self.inbox_prefix):
            if self.refusals.inbox_refused:
                self.inbox_refused = True
            return
        why = describe_error(e)
        # A server that refuses our credentials closes the connection: the
        # reset (or EOF) that follows is not news; the refusal is.
        aftermath = isinstance(e, (ConnectionResetError, BrokenPipeError)) or "eof" in why
        if not (aftermath and self.last_error and is_auth_error(self.last_error)):
            self.last_error = why
        if is_auth_error(why):
            self._auth_log.log(
                logging.ERROR,
                "nats refused our credentials servers=%s error=%r: check --token-file, "
                "--user/--password-file, --nkey or --creds against the server (retrying)",
                ",".join(self.servers),
                why,
            )
            return
        self._errlog.warning(
            "nats connection problem servers=%s error=%r (retrying)", ",".join(self.servers), why
        )

    async def _disconnected_cb(self) -> None:
        if self.connected.is_set() and not self._closing:
            self.counters.nats_disconnects += 1
            log.warning("nats disconnected; frames are dropped until reconnected")
        self.connected.clear()

    async def _reconnected_cb(self) -> None:
        self.counters.nats_reconnects += 1
        self.connected.set()
        self.last_error = None
        log.info(
            "nats reconnected server=%s reconnects=%d", self.server, self.counters.nats_reconnects
        )
        # nats-py re-sends existing subscriptions; catch up on changes made
        # while we were away.
        await self.set_subjects(self._wanted)

    async def _closed_cb(self) -> None:
        self.connected.clear()

    async def set_subjects(self, wanted: frozenset[str]) -> None:
        """Subscribe to exactly ``wanted`` (applied now if connected, else
        on reconnect)."""
        self._wanted = wanted
        if not self.nc.is_connected:
            return
        async with self._sync_lock:
            try:
                for subject in list(self._subs):
                    if subject not in self._wanted:
                        sub = self._subs.pop(subject)
                        await sub.unsubscribe()
                for subject in sorted(self._wanted - self._subs.keys()):
                    await self._subscribe(subject)
                await self.nc.flush(timeout=5)
            except (TimeoutError, nats.errors.Error, OSError) as e:
                # Not connected after all; the reconnect handler retries.
                log.debug("subscription sync deferred error=%r", e)

    async def add_subject(self, subject: str) -> None:
        """Subscribe to one more subject at once, without waiting for the
        server: a PUB sent after it on this connection is processed after it."""
        self._wanted = self._wanted | {subject}
        if not self.nc.is_connected:
            return
        try:
            await self._subscribe(subject)
        except (nats.errors.Error, OSError) as e:
            log.debug("subscription deferred subject=%s error=%r", subject, e)

    async def _subscribe(self, subject: str) -> None:
        # Both set_subjects and add_subject come here; a subject being
        # subscribed by one is skipped by the other (no double delivery).
        if subject in self._subs or subject in self._subscribing:
            return
        self._subscribing.add(subject)
        try:
            self._subs[subject] = await self.nc.subscribe(
                subject,
                cb=self.on_msg,
                pending_msgs_limit=PENDING_MSGS_LIMIT,
                pending_bytes_limit=PENDING_BYTES_LIMIT,
            )
        finally:
            self._subscribing.discard(subject)

    @property
    def subjects(self) -> frozenset[str]:
        return frozenset(self._subs)

    async def close(self) -> None:
        self._closing = True
        if not self.connected.is_set() and not self.nc.is_reconnecting:
            if self.nc.is_connecting or self.nc.is_closed:
                return
            if not getattr(self.nc, "_flush_queue", None):
                return  # connect() never got far: nothing to close
        try:
            await asyncio.wait_for(self.nc.close(), timeout=3)
        except (TimeoutError, nats.errors.Error, OSError) as e:
            log.debug("nats close error=%r", e)
