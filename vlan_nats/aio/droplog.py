"""Log lines for refused frames that would otherwise leave a node silently
deaf: sealed traffic it cannot open, plain traffic on a sealed network,
frames above its MTU, frames of new MACs beyond the C datapath's hold
queue.  Rate-limited per reason; called only on the drop path (by the
python datapath per frame, by the C datapath's events)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ..core.counters import DropReason
from ..core.seal import DEFAULT_SKEW
from ..ratelog import RateLimitedLog

log = logging.getLogger(__name__)


class DropLog:
    def __init__(self, interval: float = 30.0) -> None:
        self._logs = {r: RateLimitedLog(log, interval=interval) for r in DropReason}

    def event(
        self, reason: DropReason, value: int, subject: str, mtu: int, ours: Sequence[int]
    ) -> None:
        """A drop event of the C datapath: ``value`` is the size (oversize),
        the clock skew (seal_stale) or the sender's key id (-1: none)."""
        if reason is DropReason.OVERSIZE:
            self.oversize(value, mtu, subject)
        elif reason is DropReason.HOLD_FULL:
            self._logs[reason].warning(
                "frames from new MACs behind our bridge dropped: %d frames already wait for "
                "the control plane's verdict (hold_full); a burst of new MACs", value
            )
        elif reason is DropReason.SEALED_NO_KEY:
            self.no_key(subject)
        elif reason is DropReason.UNSEALED:
            self.unsealed(subject)
        elif reason is DropReason.SEAL_STALE:
            self.sealed(reason, None, ours, subject, value, DEFAULT_SKEW)
        else:
            self.sealed(reason, value if value >= 0 else None, ours, subject)

    def sealed(
        self,
        reason: DropReason,
        kid: int | None,
        ours: Sequence[int],
        subject: str,
        stale: int = 0,
        skew: float = 0.0,
    ) -> None:
        """A sealed message refused by the opener."""
        key = f"{kid:02x}" if kid is not None else "-"
        accepting = ",".join(f"{k:02x}" for k in ours)
        lg = self._logs[reason]
        if reason is DropReason.SEAL_KEY:
            lg.warning(
                "sealed frame under a key we do not hold key=%s accepting=%s subject=%s: "
                "the sender has another --key-file",
                key,
                accepting,
                subject,
            )
        elif reason is DropReason.SEAL_AUTH:
            lg.warning(
                "sealed frame failed authentication key=%s subject=%s: a different key with "
                "the same id, or altered on the way",
                key,
                subject,
            )
        elif reason is DropReason.SEAL_STALE:
            lg.warning(
                "sealed frame from a clock %+d s away from ours (limit %d s) key=%s "
                "subject=%s: check NTP on both hosts",
                stale,
                skew,
                key,
                subject,
            )

    def unsealed(self, subject: str) -> None:
        self._logs[DropReason.UNSEALED].warning(
            "plain frame on a sealed network subject=%s: the sender has no --key-file", subject
        )

    def no_key(self, subject: str) -> None:
        self._logs[DropReason.SEALED_NO_KEY].warning(
            "sealed frame but we have no --key-file subject=%s: the network is sealed", subject
        )

    def oversize(self, size: int, mtu: int, subject: str) -> None:
        self._logs[DropReason.OVERSIZE].warning(
            "frame too large for our MTU dropped size=%d mtu=%d subject=%s: give every "
            "node of the network the same MTU (ip link set dev DEV mtu N)",
            size,
            mtu,
            subject,
        )
