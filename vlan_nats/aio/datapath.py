"""The one interface both datapaths offer the daemon.

    python   aio/tunnel.py    Tunnel: the asyncio reference and fallback; frames
                              cross the loop, on the control connection
    c        aio/ctunnel.py   CTunnel: csrc/vn_datapath.c on its own threads and
                              its own (data) connection; programmed from here

The daemon, the key ring, the link follower and the reports use only this;
``build`` makes the one the config asks for, with its callbacks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ..core.arp import RepeatMemory
from ..core.counters import Counters
from ..core.forwarding import Forwarder
from ..core.subjects import SubjectScheme
from ..core.switching import TokenBucket
from .priority import Priority

if TYPE_CHECKING:
    from ..cdatapath import ConnOptions
    from ..config import Config
    from ..fastpath import Tap
    from .natslink import NatsLink


class Datapath(Protocol):
    failed: asyncio.Future[BaseException]  # a fatal TAP error, for the daemon

    def start(self) -> None: ...

    async def stop(self) -> None: ...

    def set_mtu(self, mtu: int) -> None: ...

    def set_mac(self, mac: bytes) -> None: ...

    def set_storm(self, pps: float) -> None: ...

    def set_switching(self, ageing: float, max_macs: int) -> None: ...

    def set_arp_routing(self, on: bool) -> None: ...

    def set_blocked(self, blocked: bool) -> None:
        """Forward nothing either way (a sealed network, and no key here)."""
        ...

    def set_keys(self, key: bytes, new_session: bool, accept: list[bytes]) -> None: ...

    def sealing_sessions(self) -> int: ...

    def refresh_counters(self) -> None: ...

    def expire(self, now: float) -> list[bytes]: ...

    def remote_macs(self, now: float) -> int: ...

    def subject_count(self) -> int:
        """NATS subscriptions held for frames (the python datapath: the link's)."""
        ...

    def data_connection(self) -> dict[str, object] | None:
        """Its own NATS connection for status (server, connected, error);
        None when it shares the control connection (python)."""
        ...

    async def wait_connected(self) -> None:
        """Until its own connection is up (at once when it has none)."""
        ...

    def set_secrets(
        self, token: str | None = None, jwt: str | None = None, seed: str | None = None
    ) -> None:
        """New credentials for its own connection (none: nothing to do)."""
        ...


class SubjectSink(Protocol):
    """Where subscriptions are made: the NATS link (python) or the C
    datapath's data connection."""

    async def set_subjects(self, wanted: frozenset[str]) -> None: ...

    async def add_subject(self, subject: str) -> None: ...

    @property
    def subjects(self) -> frozenset[str]: ...


@dataclass(frozen=True)
class Hooks:
    """What a datapath tells the daemon."""

    on_events: Callable[[], None]  # MAC learning changed something (core.forwarding events)
    on_new_local: Callable[[bytes], Awaitable[None]]  # python: subscribe a MAC behind our bridge
    on_dup_mac: Callable[[str], None]  # a frame with our own source MAC (its subject)
    on_oversize: Callable[[bytes | None, int], None]  # a frame above our MTU (source, size)
    priority: Priority | None = None  # --datapath-nice: the thread that moves frames takes it


def build(
    kind: str,
    cfg: Config,
    tap: Tap,
    link: NatsLink,
    parts: tuple[SubjectScheme, Forwarder, Counters],
    hooks: Hooks,
    data_connection: Callable[[], ConnOptions],
) -> tuple[Datapath, SubjectSink]:
    """The datapath ``kind`` ("c" or "python") for the TAP, and where its
    subscriptions are made (the C one's data connection, or the link)."""
    scheme, forwarder, counters = parts
    storm = TokenBucket(cfg.storm_pps)
    if kind == "c":
        from .ctunnel import CTunnel

        ct = CTunnel(tap.fd, data_connection(), scheme, forwarder, counters, cfg.mtu,
                     storm=storm, on_events=hooks.on_events, on_dup_mac=hooks.on_dup_mac,
                     on_oversize=hooks.on_oversize, arp_routing=cfg.arp_routing,
                     priority=hooks.priority)  # fmt: skip
        return ct, ct
    from .tunnel import Tunnel

    t = Tunnel(tap, link, scheme, forwarder, counters, cfg.mtu, storm=storm,
               on_events=hooks.on_events, on_new_local=hooks.on_new_local,
               on_dup_mac=hooks.on_dup_mac, on_oversize=hooks.on_oversize,
               arp_memory=RepeatMemory() if cfg.arp_routing else None)  # fmt: skip
    if hooks.priority is not None:
        hooks.priority.take_here()  # the event loop moves the frames
    return t, link


def choose(requested: str, servers: tuple[str, ...], tls_first: bool) -> tuple[str, str]:
    """(datapath, why) for ``--dataplane`` auto|c|python.  ``c`` asked for
    but impossible is a ConfigError naming the reason; ``auto`` falls back
    to python and says why."""
    from ..cdatapath import available, libnats_version, why_missing
    from ..errors import ConfigError

    if requested == "python":
        return "python", "--dataplane python"
    why = ""
    if not available():
        why = why_missing() + "; install libnats-dev and reinstall (scripts/install.sh)"
    elif tls_first:
        why = f"libnats {libnats_version()} has no TLS-first handshake (--tls-first)"
    elif any(s.split("://")[0] in ("ws", "wss") for s in servers):
        why = f"libnats {libnats_version()} has no websocket transport (ws:// or wss://)"
    if requested == "c":
        if why:
            raise ConfigError(f"--dataplane c: {why}", option="dataplane")
        return "c", "--dataplane c"
    if why:
        return "python", why
    return "c", f"built with libnats {libnats_version()}"
