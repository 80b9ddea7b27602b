"""CTunnel, the C datapath's control-plane side, over a fake datapath: what
it programs from core/, and how it answers the datapath's events.  No
root, no libnats, no server."""

import asyncio
import functools
import os

import pytest

from vlan_nats.aio.ctunnel import CTunnel
from vlan_nats.cdatapath import ConnOptions, Event
from vlan_nats.core.counters import Counters, DropReason
from vlan_nats.core.events import Event as Kind
from vlan_nats.core.events import LocalState
from vlan_nats.core.forwarding import Forwarder, egress_table, ingress_table
from vlan_nats.core.subjects import SubjectScheme
from vlan_nats.core.switching import MacTable, remote_limit

ME = bytes.fromhex("020000000001")
BEHIND = bytes.fromhex("020000000099")
OTHER = bytes.fromhex("0200000000aa")


class FakeDatapath:
    """Records what it is told; events are handed in by the test."""

    def __init__(self, tap_fd, compat, max_frame):
        self.calls = []
        self.pending = []
        self.local = {}  # mac -> (idle, state)
        self.subs = set()
        self.verdicts = 0
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)

    def __getattr__(self, name):  # set_*, connect, start, ...: recorded
        if not name.startswith(("set_", "connect", "start", "flush")):
            raise AttributeError(name)
        return lambda *a: self.calls.append((name, a))

    event_fd = property(lambda self: self._r)

    def push(self, *events):
        self.pending += events
        os.write(self._w, b"x")

    def events(self):
        os.read(self._r, 100)
        out, self.pending = self.pending, []
        return out

    def counter(self, name):
        return 0

    def subscribe(self, subject):
        self.subs.add(subject)

    def unsubscribe(self, subject):
        self.subs.discard(subject)

    def local_set(self, mac, state):
        self.local[mac] = (0.0, state)

    def local_del(self, mac):
        self.local.pop(mac, None)

    def local_dump(self, max_macs):
        return [(m, idle, st) for m, (idle, st) in self.local.items()]

    def verdict(self):
        self.verdicts += 1

    def error(self):
        return "authorization violation"

    def connected(self):
        return True, "nats://fake:4222"

    def read_counters(self, c):
        pass

    def close(self):
        os.close(self._r)
        os.close(self._w)


def runs(test):
    """An async test, run on its own loop (at most 5 s)."""

    @functools.wraps(test)
    def sync(*args, **kw):
        asyncio.run(asyncio.wait_for(test(*args, **kw), 5))

    return sync


def ev(kind, mac=b"\0" * 6, reason=0, value=0, text=""):
    return Event(int(kind), reason, value, mac, text)


async def make(bridge=True, max_macs=16, compat=False, **kw):
    fwd = Forwarder(ME, MacTable(300.0, max_macs), bridge=bridge)
    scheme = SubjectScheme("vlan", "5" if compat else "0", compat)
    conn = ConnOptions(servers=("nats://fake:4222",), name="test")
    t = CTunnel(7, conn, scheme, fwd, Counters(), 1500, make_dp=FakeDatapath, **kw)
    return t, t.dp


async def settle(t):
    """Let the loop run the event fd's reader."""
    for _ in range(5):
        await asyncio.sleep(0)


@pytest.mark.parametrize("compat", [False, True])
@runs
async def test_it_programs_what_core_decides(compat):
    t, dp = await make(bridge=not compat, compat=compat)
    calls = dict(dp.calls)
    assert calls["set_egress"] == (egress_table(compat),)
    assert calls["set_ingress"] == (ingress_table(not compat),)
    s = t.scheme
    assert calls["set_subjects"] == (s.unicast_prefix, s.multicast_prefix, s.broadcast, s.flood,
                                     compat)  # fmt: skip
    assert calls["set_bridge"][3] == remote_limit(16)
    await t.stop()


@runs
async def test_a_new_mac_is_subscribed_before_its_verdict():
    learned = []
    t, dp = await make(on_events=lambda: learned.append(list(t.forwarder.events)))
    t.start()
    dp.push(ev(Kind.NEW_LOCAL, BEHIND))
    await settle(t)
    assert "vlan.0.u.020000000099" in dp.subs
    assert dp.local[BEHIND][1] == LocalState.SERVED and dp.verdicts == 1
    assert learned == [[(Kind.NEW_LOCAL, BEHIND)]]
    await t.stop()


@runs
async def test_over_the_cap_is_flooding_only():
    t, dp = await make(max_macs=1)  # our own MAC fills it
    t.start()
    dp.push(ev(Kind.NEW_LOCAL, BEHIND))
    await settle(t)
    assert dp.local[BEHIND][1] == LocalState.OVER_CAP and dp.verdicts == 1
    assert "vlan.0.u.020000000099" not in dp.subs
    assert (Kind.FULL, BEHIND) in t.forwarder.events
    await t.stop()


@runs
async def test_a_lost_upcall_is_decided_at_the_next_ageing_pass():
    t, dp = await make()
    dp.local[BEHIND] = (1.0, LocalState.PENDING)  # C learned it; we never heard
    assert t.expire(1000.0) == []
    assert "vlan.0.u.020000000099" in dp.subs and dp.verdicts == 1
    assert dp.local[BEHIND][1] == LocalState.SERVED
    dp.local[OTHER] = (400.0, LocalState.OVER_CAP)  # idle past the ageing: asked again
    t.expire(1000.0)
    assert OTHER not in dp.local
    await t.stop()


@runs
async def test_a_moved_mac_leaves_the_table():
    t, dp = await make()
    t.start()
    dp.push(ev(Kind.NEW_LOCAL, BEHIND))
    await settle(t)
    dp.push(ev(Kind.MOVED_REMOTE, BEHIND))
    await settle(t)
    assert BEHIND not in t.forwarder.table.local
    assert t.forwarder.events[-1] == (Kind.MOVED_REMOTE, BEHIND)
    await t.stop()


@runs
async def test_connection_events_and_errors():
    t, dp = await make()
    t.start()
    dp.push(ev(Kind.CONNECTED, text="nats://fake:4222"))
    await settle(t)
    assert t.is_connected and t.data_connection()["connected"]
    dp.push(ev(Kind.DISCONNECTED))
    await settle(t)
    assert not t.is_connected
    dp.push(ev(Kind.ERROR, text="nats: Authorization Violation"))
    await settle(t)
    assert "authorization" in t.data_connection()["error"].lower()
    await t.stop()


@runs
async def test_an_oversized_frame_names_its_sender():
    seen = []
    t, dp = await make(on_oversize=lambda mac, size: seen.append((mac, size)))
    t.start()
    dp.push(ev(Kind.DROP, OTHER, reason=int(DropReason.OVERSIZE), value=9000, text="vlan.0.b"))
    await settle(t)
    assert seen == [(OTHER, 9000)]
    await t.stop()


@runs
async def test_a_dead_tap_fails_the_tunnel():
    t, dp = await make()
    t.start()
    dp.push(ev(Kind.TAP_ERROR, reason=19))  # ENODEV
    await settle(t)
    assert t.failed.done() and t.failed.result().errno == 19
    await t.stop()
