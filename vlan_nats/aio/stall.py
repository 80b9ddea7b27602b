"""A daemon that did not run, or did not read its TAP, says so.

A frozen host (SIGSTOP, a paused VM, a process starved of CPU) cannot
speak while frozen.  Once it runs again, a sleep of TICK s that took
STALL s longer tells it.  It then waits AFTERMATH s to learn what the
stall cost, from counters read before and after:

- a NATS connection lost: the server cut us (our pending data passed its
  ``max_pending`` or ``write_deadline``: a slow consumer); what was sent
  to us meanwhile is lost;
- messages our own client dropped (``slow_consumer``);
- frames the kernel dropped at the TAP because nobody read them (its
  queue toward us was full: the TAP's tx_dropped).

That is one WARNING line, the last stall in ``status`` (a problem for
SHOWN s after it) and counters in the metrics.

The TAP's drops are watched all the time too, not only across a stall: a
datapath that cannot keep up, or whose thread is stuck, shows as the
kernel dropping frames we did not read; while that happened within
TAP_SHOWN s it is a problem, and the line says whether the datapath read
anything at all (slow) or nothing (stuck).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ..ratelog import RateLimitedLog

log = logging.getLogger(__name__)

TICK = 1.0
STALL = 3.0  # s beyond a tick: a stall
AFTERMATH = 5.0  # s after a stall to see what it cost (a cut shows at once)
SHOWN = 300.0  # s a stall stays a problem in status
TAP_SHOWN = 60.0  # s TAP drops stay a problem


def boottime() -> float:
    """A clock that also runs while the machine or VM is suspended."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


@dataclass(frozen=True, slots=True)
class Tally:
    """Counters the watch compares across time."""

    cuts: int  # NATS connections lost so far (the data connection's on C)
    slow_consumer: int  # messages our client dropped
    tap_dropped: int | None  # frames the kernel dropped at the TAP (None: unknown)
    tap_read: int  # frames the datapath read from the TAP


def _plural(n: int, what: str) -> str:
    return f"{n:,} {what}{'' if n == 1 else 's'}"


def describe(seconds: float, dev: str, before: Tally, after: Tally) -> tuple[str, dict[str, int]]:
    """The line for a stall of ``seconds``, and what it cost in numbers."""
    cost = {
        "cuts": max(0, after.cuts - before.cuts),
        "slow_consumer": max(0, after.slow_consumer - before.slow_consumer),
        "tap_dropped": max(0, (after.tap_dropped or 0) - (before.tap_dropped or 0)),
    }
    parts = []
    if cost["cuts"]:
        parts.append("the server cut our NATS connection (a slow consumer): frames sent to us "
                     "meanwhile are lost")  # fmt: skip
    else:
        parts.append("the server kept what was sent to us and delivered it late")
    if cost["slow_consumer"]:
        parts.append(f"we dropped {_plural(cost['slow_consumer'], 'message')} "
                     "we could not take in (slow_consumer)")  # fmt: skip
    if cost["tap_dropped"]:
        parts.append(f"the kernel dropped {_plural(cost['tap_dropped'], 'frame')} at {dev} "
                     "that nobody read (its queue was full)")  # fmt: skip
    text = (f"this daemon did not run for {seconds:.1f} s (process stopped, VM paused or no "
            "CPU): " + "; ".join(parts))  # fmt: skip
    return text, cost


class StallWatch:
    """``tally()`` reads the counters (a netlink read for the TAP's)."""

    def __init__(
        self,
        dev: str,
        tally: Callable[[], Awaitable[Tally]],
        clock: Callable[[], float] = boottime,
        tick: float = TICK,
        stall: float = STALL,
        aftermath: float = AFTERMATH,
    ) -> None:
        self.dev = dev
        self.tally = tally
        self.clock = clock
        self.tick = tick
        self.stall = stall
        self.aftermath = aftermath
        self.stalls = 0
        self.stalled_s = 0.0
        self.tap_dropped = 0  # by the kernel at our TAP since start
        self.last: dict[str, Any] | None = None  # the last stall
        self._last_at = 0.0
        self._tap_text: str | None = None
        self._tap_at = 0.0
        self._taplog = RateLimitedLog(log, 30.0)

    async def run(self) -> None:
        """A task for the daemon's life."""
        before = await self.tally()
        while True:
            t0 = self.clock()
            await asyncio.sleep(self.tick)
            gap = self.clock() - t0 - self.tick
            if gap >= self.stall:
                before = await self._stalled(gap + self.tick, before)
                continue
            now = await self.tally()
            self._tap(before, now)
            before = now

    async def _stalled(self, seconds: float, before: Tally) -> Tally:
        await asyncio.sleep(self.aftermath)
        after = await self.tally()
        text, cost = describe(seconds, self.dev, before, after)
        log.warning("stalled: %s", text)
        self.stalls += 1
        self.stalled_s += seconds
        self.tap_dropped += cost["tap_dropped"]
        self._last_at = self.clock()
        self.last = {"seconds": round(seconds, 1), **cost, "text": text}
        return after

    def _tap(self, before: Tally, now: Tally) -> None:
        if before.tap_dropped is None or now.tap_dropped is None:
            return
        dropped = now.tap_dropped - before.tap_dropped
        if dropped <= 0:
            return
        self.tap_dropped += dropped
        if now.tap_read > before.tap_read:
            self._tap_text = (f"the kernel dropped frames at {self.dev} that the datapath did not "
                              "read in time (its queue was full)")  # fmt: skip
        else:
            self._tap_text = (f"the kernel dropped frames at {self.dev}: the datapath read "
                              "nothing from it (stuck; its queue was full)")  # fmt: skip
        self._tap_at = self.clock()
        self._taplog.warning("%s frames=%d total=%d", self._tap_text, dropped, self.tap_dropped)

    def status(self) -> dict[str, Any]:
        """For Status: the totals, the last stall (``ago_s``) and the
        current problems."""
        now = self.clock()
        last = dict(self.last, ago_s=round(now - self._last_at, 1)) if self.last else None
        problems = []
        if last is not None and last["ago_s"] < SHOWN:
            problems.append(f"stalled {last['ago_s']:.0f} s ago: {last['text']}")
        if self._tap_text is not None and now - self._tap_at < TAP_SHOWN:
            problems.append(f"{self._tap_text}; {self.tap_dropped:,} dropped since start")
        return {
            "stalls": self.stalls,
            "stalled_s": round(self.stalled_s, 1),
            "tap_dropped": self.tap_dropped,
            "last": last,
            "problems": problems,
        }
