"""The one interface both datapaths offer the daemon.

    python   aio/tunnel.py    Tunnel: the asyncio reference and fallback; frames
                              cross the loop, on the control connection
    c        aio/ctunnel.py   CTunnel: csrc/vn_datapath.c on its own threads and
                              its own (data) connection; programmed from here

The daemon, the key ring, the link follower and the reports use only this.
"""

from __future__ import annotations

import asyncio
from typing import Protocol


class Datapath(Protocol):
    failed: asyncio.Future[BaseException]  # a fatal TAP error, for the daemon

    def start(self) -> None: ...

    async def stop(self) -> None: ...

    def set_mtu(self, mtu: int) -> None: ...

    def set_mac(self, mac: bytes) -> None: ...

    def set_storm(self, pps: float) -> None: ...

    def set_switching(self, ageing: float, max_macs: int) -> None: ...

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


class SubjectSink(Protocol):
    """Where subscriptions are made: the NATS link (python) or the C
    datapath's data connection."""

    async def set_subjects(self, wanted: frozenset[str]) -> None: ...

    async def add_subject(self, subject: str) -> None: ...

    @property
    def subjects(self) -> frozenset[str]: ...
