"""The stall watch (aio/stall.py) with a clock the test moves."""

from __future__ import annotations

import asyncio

from vlan_nats.aio.stall import SHOWN, StallWatch, Tally, describe


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0
        self.jump = 0.0

    def __call__(self) -> float:
        self.t += 0.01 + self.jump  # a tick's sleep, and once a stall
        self.jump = 0.0
        return self.t


def watch(tallies: list[Tally], clock: Clock) -> StallWatch:
    """Each read of the counters gives the first of ``tallies``; the test
    moves on to the next (``_run_until``)."""

    async def tally() -> Tally:
        return tallies[0]

    return StallWatch("vn0", tally, clock=clock, tick=0.001, stall=3.0, aftermath=0.001)


async def _run_until(w: StallWatch, tallies: list[Tally], done: object, clock: Clock,
                     jump: float = 0.0) -> None:  # fmt: skip
    """Run the watch a while on the first tally, then stall for ``jump`` s
    (if any) with the counters at the second, until ``done()``."""
    task = asyncio.ensure_future(w.run())
    await asyncio.sleep(0.02)
    clock.jump = jump
    if len(tallies) > 1:
        tallies.pop(0)
    for _ in range(200):
        await asyncio.sleep(0.005)
        if done():  # type: ignore[operator]
            break
    task.cancel()


def test_a_stall_is_told_with_what_it_cost() -> None:
    clock = Clock()
    quiet = Tally(cuts=0, slow_consumer=0, tap_dropped=10, tap_read=5)
    after = Tally(cuts=1, slow_consumer=0, tap_dropped=510, tap_read=5)
    tallies = [quiet, after]
    w = watch(tallies, clock)
    asyncio.run(_run_until(w, tallies, lambda: w.stalls, clock, jump=30.0))
    assert w.stalls == 1 and 29 < w.stalled_s < 32
    st = w.status()
    assert st["last"]["cuts"] == 1 and st["last"]["tap_dropped"] == 500
    assert st["tap_dropped"] == 500
    (problem,) = st["problems"]
    assert "did not run for 3" in problem and "cut our NATS connection" in problem
    assert "500 frames at vn0 that nobody read" in problem


def test_no_stall_no_problem_and_a_stall_is_forgotten_after_a_while() -> None:
    clock = Clock()
    tallies = [Tally(0, 0, 0, 0)]
    w = watch(tallies, clock)
    asyncio.run(_run_until(w, tallies, lambda: False, clock))
    assert w.stalls == 0 and w.status()["problems"] == [] and w.status()["last"] is None
    w.last, w._last_at = {"seconds": 5.0, "text": "x"}, clock.t
    assert w.status()["problems"]
    clock.t += SHOWN
    assert w.status()["problems"] == [] and w.status()["last"]["seconds"] == 5.0


def test_frames_the_kernel_drops_unread_are_a_problem_stuck_or_slow() -> None:
    clock = Clock()
    stuck = [Tally(0, 0, 0, 7), Tally(0, 0, 40, 7)]
    w = watch(stuck, clock)
    asyncio.run(_run_until(w, stuck, lambda: w.tap_dropped, clock))
    assert w.tap_dropped == 40 and w.stalls == 0
    (problem,) = w.status()["problems"]
    assert "read nothing from it (stuck" in problem
    slow = [Tally(0, 0, 0, 7), Tally(0, 0, 40, 900)]
    w = watch(slow, clock)
    asyncio.run(_run_until(w, slow, lambda: w.tap_dropped, clock))
    assert "did not read in time" in w.status()["problems"][0]


def test_a_stall_the_server_rode_out_says_so() -> None:
    text, cost = describe(31.04, "vn0", Tally(2, 0, None, 0), Tally(2, 3, None, 0))
    assert cost == {"cuts": 0, "slow_consumer": 3, "tap_dropped": 0}
    assert text.startswith("this daemon did not run for 31.0 s")
    assert "kept what was sent to us" in text and "3 messages" in text
