"""The node's side of the network's definition (netdef.py): read at start,
before ``ready``, then watched; each change is applied live.

What the node runs is netdef.effective's: the network's value of each of
its settings, unless the node was given its own explicitly (one WARNING,
and a problem in ``status`` and ``network show`` while it differs).  A
value this release cannot accept is refused, named, and the last good
definition stays; so do the settings while JetStream cannot be read (since
when is in ``status``), and the watch resumes by itself.  Without
JetStream or without a definition the node runs on its own settings and
says so once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import nats.errors
from nats.aio.client import Client
from nats.js.kv import KeyValue

from ..core.subjects import SubjectScheme
from ..errors import ConfigError
from ..netdef import Definition, effective, node_keys
from . import netkv
from .leasestore import BucketMissing, IpamError

log = logging.getLogger("vlan_nats.network")

FIRST_WAIT = 3.0  # s: the definition read before ready
POLL = 5.0  # s: besides the watch, the entry is read this often (it also tells an outage)
RETRY = 2.0  # s: after an outage, the bucket is tried again this often
MTU_SETTLE = 2.0  # s: after we set the MTU, a different one is not yet "set by hand"
WATCH_RETRY = 60.0  # s: a refused watch is tried again this often (read every POLL meanwhile)
MISSING_POLL = 1.0  # s: while no network is defined (no bucket yet), it is looked for this often


class NetWatch:
    def __init__(
        self,
        scheme: SubjectScheme,
        own: dict[str, Any],
        explicit: frozenset[str],
        apply: Callable[[str, Any], None],
        current_mtu: Callable[[], int],
        has_key: bool = False,
        block: Callable[[bool], None] = lambda blocked: None,
    ) -> None:
        self.scheme = scheme
        self.own = own  # the node's values of node_keys(): flags, file, defaults
        self.explicit = explicit
        self._apply = apply  # (setting, new value)
        self._mtu = current_mtu
        self.has_key = has_key  # --key-file: this node seals its frames
        self._block = block  # (forward nothing?): a sealed network without a key here
        self.values = dict(own)  # what it runs now
        self.settings: dict[str, Any] = {}  # the definition in force
        self.revision: int | None = None
        self.overrides: list[str] = []
        self.refused: str | None = None
        self.unavailable_since: float | None = None
        self.unwatched: str | None = None  # why the watch failed, while it does
        self._said: set[str] = set()
        self._mtu_set = 0.0  # when we last set the TAP's MTU (monotonic)

    # -- what it shows -------------------------------------------------------
    def problems(self) -> list[dict[str, str]]:
        """What is wrong here with the definition: kind (override, refused,
        unreadable, no_watch, mtu_by_hand, no_key) and text."""
        out = [{"kind": "override", "text": line} for line in self.overrides]
        if self.refused:
            out.append({"kind": "refused", "text": f"network definition refused "
                        f"({self.refused}); keeping {self._kept()}"})  # fmt: skip
        if self.unavailable_since is not None:
            since = time.strftime("%H:%M:%S", time.localtime(self.unavailable_since))
            out.append({"kind": "unreadable", "text": f"network definition unreadable since "
                        f"{since}; keeping {self._kept()}"})  # fmt: skip
        if self.unwatched and self.unavailable_since is None:
            out.append({"kind": "no_watch", "text": f"cannot watch the network definition "
                        f"({self.unwatched}): changes arrive within {POLL:.0f} s"})  # fmt: skip
        want = self.values.get("mtu")
        settling = time.monotonic() - self._mtu_set < MTU_SETTLE  # the kernel has it soon
        if ("mtu" in self.settings and "mtu" not in self.explicit and not settling
                and self._mtu() != want):  # fmt: skip
            out.append({"kind": "mtu_by_hand",
                        "text": f"mtu {self._mtu()} set by hand overrides the network's {want}"})
        if self.settings.get("sealed") and not self.has_key:
            out.append({"kind": "no_key", "text": "the network is sealed (its definition) and "
                        "this node has no --key-file: it forwards no frame"})  # fmt: skip
        return out

    def _kept(self) -> str:
        return f"revision {self.revision}" if self.revision else "its own settings"

    # -- applying -----------------------------------------------------------
    def take(self, d: Definition | None) -> None:
        """Apply a definition (None: none, or deleted: back to our own)."""
        settings = d.settings if d is not None else {}
        values, overrides = effective(self.own, self.explicit, settings)
        rev = d.revision if d is not None else None
        for key in node_keys():
            if values[key] != self.values[key]:
                if key == "mtu":
                    self._mtu_set = time.monotonic()
                self._apply(key, values[key])
                log.info("%s %s -> %s, revision %s", key, self.values[key], values[key], rev)
        for line in overrides:
            if line not in self.overrides:
                log.warning("network %s: %s", self.scheme.network, line)
        blocked = bool(settings.get("sealed")) and not self.has_key
        if blocked != (bool(self.settings.get("sealed")) and not self.has_key):
            self._block(blocked)
            if blocked:
                log.error("network %s is sealed (revision %s) and this node has no --key-file: "
                          "it forwards no frame until it has the network's key",
                          self.scheme.network, rev)  # fmt: skip
            else:
                log.info("network %s: forwarding again (revision %s)", self.scheme.network, rev)
        self.values, self.settings, self.overrides = values, settings, overrides
        self.revision, self.refused = rev, None

    def _refuse(self, why: str) -> None:
        if why != self.refused:
            log.error("network %s: definition refused, keeping %s: %s", self.scheme.network,
                      self._kept(), why)  # fmt: skip
        self.refused = why

    async def _read(self, kv: KeyValue) -> None:
        try:
            d = await netkv.get(kv, self.scheme.network)
        except ConfigError as e:
            self._refuse(str(e))
            return
        if d is None:
            self._none()
        elif d.revision != self.revision:
            self.take(d)

    def _none(self) -> None:
        """No definition (none yet, or deleted): our own settings."""
        self._once("none", "network %s has no definition: running on its own settings",
                   self.scheme.network)  # fmt: skip
        if self.revision is not None or self.refused:
            self.take(None)

    async def _bucket(self, nc: Client) -> KeyValue:
        """Nodes only read the definitions: an administrator's `network set`
        makes the bucket (docs/security.md: a node may not)."""
        return await netkv.definitions(nc, self.scheme.prefix, create=False)

    def _once(self, what: str, msg: str, *args: object) -> None:
        if what not in self._said:
            self._said.add(what)
            log.info(msg, *args)

    # -- the tasks -------------------------------------------------------------
    async def first(self, nc: Client) -> None:
        """Before ready: the definition as it is now (never longer than
        FIRST_WAIT: a slow JetStream is left to run())."""
        try:
            await asyncio.wait_for(self._first(nc), FIRST_WAIT)
        except BucketMissing:
            self._none()
        except IpamError as e:  # no JetStream
            self._once("nojs", "network definition: %s; running on its own settings", e)
        except (TimeoutError, nats.errors.Error) as e:
            self._unavailable(e)

    async def _first(self, nc: Client) -> None:
        await self._read(await self._bucket(nc))

    async def run(self, nc: Client) -> None:
        """Watch the definition until cancelled; outages are waited out."""
        while True:
            try:
                kv = await self._bucket(nc)
                await self._watch(kv)
            except BucketMissing:  # no network defined yet: the first `network set` makes it
                self._none()
                self._available()
                await asyncio.sleep(MISSING_POLL)
                continue
            except IpamError as e:
                if "JetStream" in str(e) and "no JetStream" not in str(e):
                    self._unavailable(e)
                else:
                    self._once("nojs", "network definition: %s; running on its own settings", e)
                    await asyncio.sleep(60.0)  # a server may gain JetStream later
                    continue
            except (TimeoutError, nats.errors.Error) as e:
                self._unavailable(e)
            await asyncio.sleep(RETRY)

    async def _watch(self, kv: KeyValue) -> None:
        try:
            watcher = await kv.watch(self.scheme.network)
        except (TimeoutError, nats.errors.Error) as e:
            await self._poll(kv, e)  # the entry itself may still be readable
            return
        self._watch_refused(None)
        try:
            await self._read(kv)
            self._available()
            while True:
                try:
                    entry = await watcher.updates(timeout=POLL)  # type: ignore[no-untyped-call]
                except nats.errors.TimeoutError:
                    await self._read(kv)  # a safety net, and a check that it answers
                    self._available()
                    continue
                if entry is not None and entry.revision != self.revision:
                    await self._read(kv)
        finally:
            with contextlib.suppress(Exception):  # the connection may be gone
                await watcher.stop()  # type: ignore[no-untyped-call]

    async def _poll(self, kv: KeyValue, why: BaseException) -> None:
        """No watch (e.g. the server refuses its consumer): read the entry
        every POLL instead, and try the watch again after WATCH_RETRY."""
        await self._read(kv)  # unreadable too: run() says so and retries
        self._available()
        self._watch_refused(str(why) or type(why).__name__)
        until = time.monotonic() + WATCH_RETRY
        while time.monotonic() < until:
            await asyncio.sleep(POLL)
            await self._read(kv)
            self._available()

    def _watch_refused(self, why: str | None) -> None:
        if why and not self.unwatched:
            log.warning("network %s: cannot watch the definition (%s); reading it every %.0f s "
                        "instead (server permissions: docs/security.md)", self.scheme.network,
                        why, POLL)  # fmt: skip
        elif not why and self.unwatched:
            log.info("network %s: watching the definition again", self.scheme.network)
        self.unwatched = why

    def _unavailable(self, e: BaseException) -> None:
        if self.unavailable_since is None:
            self.unavailable_since = time.time()
            log.warning("network %s: definition unreadable (%s); keeping %s, trying again",
                        self.scheme.network, str(e) or type(e).__name__, self._kept())  # fmt: skip

    def _available(self) -> None:
        if self.unavailable_since is not None:
            log.info("network %s: definition readable again, revision %s",
                     self.scheme.network, self.revision)  # fmt: skip
            self.unavailable_since = None


